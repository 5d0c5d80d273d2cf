#!/usr/bin/env bash
# The protos as other people's tools see them: `buf lint`, `buf breaking` against the previous
# commit, and Go (protoc-gen-go, protoc-gen-go-grpc) and Java (protoc's --java_out) code
# generation with no flags beyond the output folders. Installs what it lacks: protoc and the
# Go plugins from Debian, buf from npm into a folder of its own.
#
#   scripts/ci_protos.sh                 # breaking changes against HEAD~1
#   USERDIR_PROTO_BREAKING_AGAINST=origin/main scripts/ci_protos.sh   # e.g. a branch's base
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
TOOLS="${USERDIR_PROTO_TOOLS:-/opt/userdir-proto-tools}"
AGAINST="${USERDIR_PROTO_BREAKING_AGAINST:-HEAD~1}"

if ! command -v protoc >/dev/null 2>&1 || ! command -v protoc-gen-go >/dev/null 2>&1 \
  || ! command -v protoc-gen-go-grpc >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler protoc-gen-go protoc-gen-go-grpc
fi
BUF="$TOOLS/node_modules/.bin/buf"
if [ "$("$BUF" --version 2>/dev/null || true)" != "$BUF_VERSION" ]; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --loglevel=error "@bufbuild/buf@$BUF_VERSION"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "protos: buf lint"
"$BUF" lint

# buf breaking compares the working tree with the protos of $AGAINST, read with `git archive`
# (which works in worktrees and needs no clone of our own). A shallow clone of depth 1 has no
# previous commit: then try to deepen it by one commit, and when that is impossible (or this is
# the first commit) skip the comparison, saying so, rather than fail a run that cannot tell.
# A base named in USERDIR_PROTO_BREAKING_AGAINST must exist.
if ! git rev-parse --verify --quiet "$AGAINST^{commit}" >/dev/null \
  && [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  git fetch --quiet --deepen=1 2>/dev/null || true
fi
if ! base=$(git rev-parse --verify --quiet "$AGAINST^{commit}"); then
  if [ -n "${USERDIR_PROTO_BREAKING_AGAINST:-}" ]; then
    echo "protos: USERDIR_PROTO_BREAKING_AGAINST=$AGAINST is not a commit of this clone" >&2
    exit 1
  fi
  echo "protos: buf breaking SKIPPED: this clone has no commit before HEAD" \
    "(shallow: $(git rev-parse --is-shallow-repository)), so there is nothing to compare with"
elif [ -z "$(git ls-tree "$base" proto)" ]; then
  echo "protos: buf breaking SKIPPED: $AGAINST ($base) has no proto/ to compare with"
else
  git archive "$base" proto $(git ls-tree --name-only "$base" buf.yaml) | tar -x -C "$scratch"
  if [ -f "$scratch/buf.yaml" ]; then
    echo "protos: buf breaking against $AGAINST ($base), rules of buf.yaml"
    "$BUF" breaking --against "$scratch"
  else
    # A commit from before buf.yaml and the language options: adding those options changes
    # the generated code's packages (on purpose), so only the wire (binary and JSON) is
    # compared with it. Every later commit is compared with buf.yaml's own (FILE) rules.
    echo "protos: buf breaking against $AGAINST ($base), which predates buf.yaml: WIRE_JSON rules"
    "$BUF" breaking --against "$scratch/proto" \
      --config '{"version":"v2","modules":[{"path":"proto"}],"breaking":{"use":["WIRE_JSON"]}}'
  fi
fi

# Code generation as a Go or Java user runs it. Only our own files: google/api comes from
# genproto (Go) and proto-google-common-protos (Java), which our exact copies match.
echo "protos: protoc $(protoc --version | cut -d' ' -f2) --go_out --go-grpc_out --java_out"
mkdir -p "$scratch/go" "$scratch/java"
protoc -I proto --go_out="$scratch/go" --go-grpc_out="$scratch/go" --java_out="$scratch/java" \
  proto/userdir/user/v1/*.proto
go_dir="$scratch/go/github.com/userdir/userdir/gen/go/userdir/user/v1"
java_dir="$scratch/java/com/userdir/user/v1"
for file in "$go_dir/user_service.pb.go" "$go_dir/user_service_grpc.pb.go" \
  "$java_dir/ObjectProto.java" "$java_dir/UserServiceProto.java" "$java_dir/User.java"; do
  [ -f "$file" ] || { echo "protos: protoc did not write ${file#"$scratch"/}" >&2; exit 1; }
done
grep -q '^package userv1$' "$go_dir/user_service.pb.go"
# A class named Object would shadow java.lang.Object in every generated file of the package.
if [ -e "$java_dir/Object.java" ]; then
  echo "protos: protoc wrote a Java class named Object" >&2
  exit 1
fi
echo "protos: ok ($(find "$scratch/go" -name '*.go' | wc -l) Go files," \
  "$(find "$scratch/java" -name '*.java' | wc -l) Java files)"
