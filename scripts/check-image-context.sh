#!/usr/bin/env bash
# The image's build stage, replayed without a container engine (issue 20). The Containerfile's
# own COPY lines rebuild its build context in an empty directory and its cargo RUN lines run
# there, so a context that lacks something cargo reads fails here as it fails in `podman build`.
#   scripts/check-image-context.sh [CONTAINERFILE]
#       `cargo build --release` runs as `cargo check` on the repository's target/ (cheap: CI).
#   scripts/check-image-context.sh --release [CONTAINERFILE]
#       the cargo commands as written, on a cold target dir of their own, each one timed: what
#       the image's cargo stage costs (docs/install.md).
# Also refused: a build stage that swallows errors (`|| true`), a dependency layer that depends
# on the sources, a COPY source the ignore files keep out of the context, and ignore files that
# let target/, data/ or .git in.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode=check
if [ "${1:-}" = "--release" ]; then
  mode=release
  shift
fi
containerfile="$(realpath "${1:-$root/Containerfile}")"
# Apart, so a check run never deletes a release run's build.
work_root="$root/target/image-context-$mode"
work="$work_root/src"
problems=()
problem() { problems+=("$*"); echo "PROBLEM: $*" >&2; }

# One instruction per line: comment lines dropped, continuation lines joined (as the builder
# reads them).
instructions() {
  sed -e '/^[[:space:]]*#/d' "$containerfile" |
    awk '{ if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }' |
    awk 'NF'
}
# The instructions of the stage named `build`, without its FROM.
build_stage() {
  instructions | awk '
    toupper($1) == "FROM" { in_build = (tolower($NF) == "build" && toupper($(NF-1)) == "AS"); next }
    in_build { print }'
}

# --- the ignore files --------------------------------------------------------------------
ignore_patterns=()
check_ignore_files() {
  local file
  for file in .dockerignore .containerignore; do
    [ -f "$root/$file" ] || { problem "$file is missing: target/ and data/ would enter the build context"; continue; }
  done
  [ -f "$root/.dockerignore" ] || return 0
  if [ -f "$root/.containerignore" ] && ! cmp -s "$root/.dockerignore" "$root/.containerignore"; then
    problem ".dockerignore and .containerignore differ (docker reads one, podman the other)"
  fi
  local line
  while IFS= read -r line; do
    line="${line%%#*}"
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    if [ -z "$line" ] || [[ "$line" == !* ]]; then continue; fi
    line="${line#/}"
    ignore_patterns+=("${line%/}")
  done <"$root/.dockerignore"
  local must
  for must in target data .git; do
    if ! ignored "$must"; then problem ".dockerignore does not exclude $must/"; fi
  done
}
# Whether a context path is excluded (the pattern itself, or a directory above the path).
ignored() {
  local path="${1#./}" pattern
  path="${path%/}"
  for pattern in "${ignore_patterns[@]}"; do
    # shellcheck disable=SC2053 # the pattern is a glob on purpose
    if [[ "$path" == $pattern ]] || [[ "$path" == $pattern/* ]]; then return 0; fi
  done
  return 1
}

# --- COPY from the context -------------------------------------------------------------------
workdir=""
# The replay directory's path for a destination in the image, into $local_path.
local_path=""
local_dest() {
  local dest="$1"
  if [[ "$dest" == /* ]]; then
    if [ -z "$workdir" ] || [[ "$dest/" != "$workdir/"* ]]; then
      problem "COPY to $dest, outside WORKDIR $workdir: not replayable"
      return 1
    fi
    dest="${dest#"$workdir"}"
    dest="${dest#/}"
  fi
  local_path="$work/${dest:-.}"
}
# COPY [--flags] SRC... DEST, with the builder's rules: a directory's contents go into DEST; a
# file goes into DEST when DEST is a directory (trailing /, `.`, several sources), else becomes
# DEST. `cp -p` keeps the mtimes, as COPY does.
replay_copy() {
  local -a words sources
  read -ra words <<<"$1"
  local word
  for word in "${words[@]}"; do
    case "$word" in
      --from=*) problem "COPY $1: the build stage copies from another stage, not replayable"; return ;;
      --*) ;;
      \[*) problem "COPY $1: the JSON form is not replayable"; return ;;
      *) sources+=("$word") ;;
    esac
  done
  local dest="${sources[-1]}"
  unset 'sources[-1]'
  local target into_dir=0
  local_dest "$dest" || return 0
  target="$local_path"
  if [ "${#sources[@]}" -gt 1 ] || [[ "$dest" == */ ]] || [ "$dest" = . ] || [ -d "$target" ]; then
    into_dir=1
  fi
  local src
  for src in "${sources[@]}"; do
    if ignored "$src"; then
      problem "COPY $src: .dockerignore keeps it out of the build context"
      continue
    fi
    if [ -d "$root/$src" ]; then
      mkdir -p "$target"
      cp -pR "$root/$src/." "$target/"
    elif [ -f "$root/$src" ]; then
      if [ "$into_dir" = 1 ]; then
        mkdir -p "$target"
        cp -p "$root/$src" "$target/"
      else
        mkdir -p "$(dirname "$target")"
        cp -p "$root/$src" "$target"
      fi
    else
      problem "COPY $src: not in the repository"
    fi
  done
}

# --- the static rules --------------------------------------------------------------------
check_stage_rules() {
  local -a stage
  mapfile -t stage < <(build_stage)
  [ "${#stage[@]}" -gt 0 ] || { problem "no stage named build (FROM … AS build)"; return; }
  local line first_cargo=-1 first_src_copy=-1 i
  local swallowed='\|\|[[:space:]]*(true|:)([[:space:];)]|$)'
  local cargo_build='cargo[[:space:]]+build'
  local copies_src='[[:space:]](\./)?src/?[[:space:]]'
  for i in "${!stage[@]}"; do
    line="${stage[$i]}"
    case "${line%%[[:space:]]*}" in
      RUN | run)
        if [[ "$line" =~ $swallowed ]]; then
          problem "RUN swallows its errors (|| true): ${line:0:100}…"
        fi
        if [[ "$line" =~ $cargo_build ]] && [ "$first_cargo" -lt 0 ]; then first_cargo=$i; fi
        ;;
      COPY | copy)
        if [[ "$line" =~ $copies_src ]] && [ "$first_src_copy" -lt 0 ]; then
          first_src_copy=$i
        fi
        ;;
    esac
  done
  if [ "$first_cargo" -lt 0 ]; then
    problem "the build stage never runs cargo build"
  elif [ "$first_src_copy" -ge 0 ] && [ "$first_src_copy" -lt "$first_cargo" ]; then
    problem "src/ is copied before the first cargo build: every source edit rebuilds the dependencies"
  elif [ "$first_src_copy" -lt 0 ]; then
    problem "the build stage never copies src/"
  fi
}

# Every COPY from the context, in every stage, names something that is there and not ignored
# (the runtime stage copies config/default.yaml).
check_all_context_copies() {
  local line word
  while IFS= read -r line; do
    if [[ ! "$line" =~ ^[Cc][Oo][Pp][Yy][[:space:]] ]] || [[ "$line" == *--from=* ]]; then
      continue
    fi
    local -a words=() sources=()
    read -ra words <<<"${line#* }"
    for word in "${words[@]}"; do
      if [[ "$word" != --* ]]; then sources+=("$word"); fi
    done
    unset 'sources[-1]'
    for word in "${sources[@]}"; do
      if [ ! -e "$root/$word" ]; then problem "COPY $word: not in the repository"; fi
      if ignored "$word"; then problem "COPY $word: .dockerignore keeps it out of the build context"; fi
    done
  done < <(instructions)
}

# --- the replay ----------------------------------------------------------------------------
replay() {
  rm -rf "$work_root"
  mkdir -p "$work"
  local shim="$work_root/bin"
  mkdir -p "$shim"
  if [ "$mode" = check ]; then
    # `cargo build --release …` becomes `cargo check …` on the repository's target dir: the
    # manifest, the lock and every file the crate reads are still needed, but nothing is linked.
    REAL_CARGO="$(command -v cargo)"
    export REAL_CARGO
    cat >"$shim/cargo" <<'SHIM'
#!/usr/bin/env bash
args=()
sub=0
for a in "$@"; do
  if [ "$sub" = 0 ] && [ "$a" = build ]; then args+=(check); sub=1; continue; fi
  if [ "$a" = --release ]; then continue; fi
  args+=("$a")
done
exec "$REAL_CARGO" "${args[@]}"
SHIM
    chmod +x "$shim/cargo"
    export PATH="$shim:$PATH" CARGO_TARGET_DIR="$root/target"
  else
    unset CARGO_TARGET_DIR
  fi
  local line instruction args started
  local runs_cargo='(^|[^[:alnum:]_-])cargo[[:space:]]'
  while IFS= read -r line <&3; do
    instruction="${line%%[[:space:]]*}"
    args="${line#"$instruction"}"
    args="${args#"${args%%[![:space:]]*}"}"
    case "${instruction^^}" in
      WORKDIR) workdir="${args%/}" ;;
      ENV)
        local pair
        for pair in $args; do
          if [[ "$pair" == *=* ]]; then export "${pair%%=*}=${pair#*=}"; fi
        done
        ;;
      COPY) replay_copy "$args" ;;
      ADD) problem "ADD $args: use COPY (ADD fetches and unpacks)" ;;
      RUN)
        if [[ ! "$args" =~ $runs_cargo ]]; then
          echo "skipped (no cargo): RUN ${args:0:80}…"
          continue
        fi
        echo "==> RUN ${args:0:120}…"
        started=$(date +%s)
        # The builder runs RUN with `/bin/sh -c`, nothing more.
        if ! (cd "$work" && /bin/sh -c "$args"); then
          problem "RUN failed in the replayed context: ${args:0:100}…"
          return
        fi
        echo "    took $(($(date +%s) - started)) s"
        ;;
      ARG | LABEL | USER | EXPOSE | SHELL) ;;
      *) echo "skipped: $instruction" ;;
    esac
  done 3< <(build_stage)
}

cd "$root"
echo "image context check ($mode) of $containerfile"
check_ignore_files
check_all_context_copies
check_stage_rules
replay
if [ "${#problems[@]}" -gt 0 ]; then
  echo >&2
  echo "check-image-context: ${#problems[@]} problem(s) with $containerfile:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "ok: the build stage of $containerfile builds from its own context"
