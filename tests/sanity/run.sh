#!/usr/bin/env bash
# Sanity checks of the collection (make sanity). Everything runs offline:
#   1. ansible-galaxy collection build, then install the tarball into a temp dir,
#      so the checks below see exactly what users get (build_ignore included);
#   2. validate-modules: ansible-test's own checker (documentation schema, and
#      DOCUMENTATION against the real argument_spec of every module), run
#      directly with this venv's Python because `ansible-test sanity` insists on
#      downloading a pip bootstrap into a fresh venv;
#   3. ansible-doc renders every module and every role with meta/argument_specs.yml;
#   4. Python byte-compiles under every plugin directory;
#   5. yamllint (.yamllint) and antsibull-changelog lint.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
export PATH="$BIN:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_NOCOLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/logstack-sanity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=()
fail() { failures+=("$1"); echo "FAIL: $1"; }
step() { echo; echo "== $*"; }

step "build the collection"
ansible-galaxy collection build --force --output-path "$WORK/dist" "$ROOT" >/dev/null
TARBALL=$(ls "$WORK"/dist/logstack-elk-*.tar.gz)
echo "built $(basename "$TARBALL") ($(du -h "$TARBALL" | cut -f1))"
# Nothing the galaxy.yml build_ignore keeps out may slip in.
if tar -tzf "$TARBALL" | grep -E '^(sandbox|bench|\.venv|\.collections|\.git|build|tests/output)/' ; then
  fail "the built collection contains ignored paths (above)"
fi
# Only the installed copy is visible as logstack.elk from here on (not the checkout's link).
export ANSIBLE_COLLECTIONS_PATH="$WORK/collections"
# --no-deps: dependencies come from the venv's ansible package (Galaxy may be unreachable).
ansible-galaxy collection install --force --no-deps -p "$WORK/collections" "$TARBALL" >/dev/null
COLL="$WORK/collections/ansible_collections/logstack/elk"
[ -f "$COLL/MANIFEST.json" ] || { echo "install of $TARBALL into $WORK/collections failed"; exit 1; }

step "validate-modules (ansible-test's validator, run offline)"
VALIDATE=$("$PY" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_util", "controller", "sanity", "validate-modules", "validate.py"))')
VERSION=$("$PY" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
mapfile -t modules < <(cd "$COLL" && ls plugins/modules/*.py 2>/dev/null | grep -v '/__init__.py$' || true)
if [ ${#modules[@]} -gt 0 ]; then
  set +e
  (cd "$COLL" && "$PY" "$VALIDATE" --format json --arg-spec --collection ansible_collections/logstack/elk \
     --collection-version "$VERSION" "${modules[@]}") >"$WORK/validate.json" 2>"$WORK/validate.err"
  status=$?
  set -e
  # Exit status 3 means "errors found" (JSON on stdout); anything else is the validator failing.
  if [ $status -ne 0 ] && [ $status -ne 3 ]; then
    cat "$WORK/validate.err"; fail "validate-modules could not run (status $status)"
  else
    bad=$("$PY" - "$WORK/validate.json" "${modules[@]}" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
bad = []
for module in sys.argv[2:]:
    errors = (report.get(module) or {}).get("errors") or []
    if not errors:
        print("ok: %s" % module, file=sys.stderr)
        continue
    bad.append(module.rsplit("/", 1)[-1][:-3])
    for e in errors:
        print("%s:%s:%s: %s %s" % (module, e.get("line", 0), e.get("column", 0), e["code"], e["msg"]), file=sys.stderr)
print(" ".join(bad))
PY
)
    [ -z "$bad" ] || fail "validate-modules: $bad"
  fi
fi

step "ansible-doc renders every module and role"
for module in "${modules[@]}"; do
  name=$(basename "$module" .py)
  if out=$(ansible-doc "logstack.elk.$name" 2>&1) && ! grep -qE '^\[(ERROR|WARNING)\]' <<<"$out"; then
    echo "ok: logstack.elk.$name"
  else
    echo "$out" | grep -E '^\[(ERROR|WARNING)\]' | head -5
    fail "ansible-doc logstack.elk.$name"
  fi
done
for spec in "$COLL"/roles/*/meta/argument_specs.yml; do
  [ -e "$spec" ] || continue
  role=$(basename "$(dirname "$(dirname "$spec")")")
  if out=$(ansible-doc -t role "logstack.elk.$role" 2>&1) && ! grep -qE '^\[(ERROR|WARNING)\]' <<<"$out"; then
    echo "ok: role logstack.elk.$role"
  else
    echo "$out" | grep -E '^\[(ERROR|WARNING)\]' | head -5
    fail "ansible-doc -t role logstack.elk.$role"
  fi
done

step "Python compiles"
if "$PY" -m compileall -q "$COLL/plugins" >/dev/null; then echo "ok: plugins"; else fail "compileall plugins"; fi

step "yamllint"
if command -v yamllint >/dev/null; then
  if yamllint -c .yamllint .; then echo "ok"; else fail "yamllint"; fi
else
  echo "yamllint not installed: skipped"
fi

step "antsibull-changelog lint"
if command -v antsibull-changelog >/dev/null; then
  if antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml; then
    echo "ok"
  else
    fail "antsibull-changelog lint"
  fi
else
  echo "antsibull-changelog not installed: skipped"
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "sanity: ${#failures[@]} check(s) failed: ${failures[*]}"
  exit 1
fi
echo "sanity: all checks passed"
