# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this
# Sourced by face_models.sh and face_reference.sh: the npm package both take
# their files from (face-api 1.7.15; the tarball pinned by the registry's
# sha512 integrity), its cache folder, and npm_tarball.sh's functions.
FACE_API_PACKAGE="@vladmandic/face-api@1.7.15"
FACE_API_TGZ=vladmandic-face-api-1.7.15.tgz
FACE_API_INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
FACE_API_DIR="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15"
# shellcheck source=npm_tarball.sh
. "$(dirname "${BASH_SOURCE[0]}")/npm_tarball.sh"
