#!/bin/sh
# Runs a command and checks its exit status and what it printed; for the
# cli.* tests, where PASS_REGULAR_EXPRESSION alone would ignore the status
# and WILL_FAIL alone the message.
#
#   sh expect.sh [--status N|nonzero] [--grep ERE]... [--stdout FILE]
#                [--remove PATH]... [--absent PATH]... [--as-nobody]
#                -- COMMAND [ARG...]
#
#   --status     the exit status wanted (default 0; nonzero: anything but 0)
#   --grep       standard output and error together must match ERE
#   --stdout     send standard output to FILE (/dev/full: output that fails)
#   --remove     delete PATH before running (what an earlier run left)
#   --absent     PATH must not exist afterwards
#   --as-nobody  run as the user nobody when run as root (setpriv), so that
#                file permissions hold; exits 77 (skipped) if that is not
#                possible
set -u
status=0
stdout=
patterns=
absent=
as_nobody=0
nl='
'
while [ $# -gt 0 ]; do
  case "$1" in
    --status) status=$2; shift 2 ;;
    --grep) patterns="$patterns$2$nl"; shift 2 ;;
    --stdout) stdout=$2; shift 2 ;;
    --remove) rm -f "$2"; shift 2 ;;
    --absent) absent="$absent$2$nl"; shift 2 ;;
    --as-nobody) as_nobody=1; shift ;;
    --) shift; break ;;
    *) echo "expect.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "expect.sh: no command" >&2; exit 2; }

if [ "$as_nobody" = 1 ] && [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null 2>&1 || { echo "expect.sh: setpriv is missing; skipped" >&2; exit 77; }
  set -- setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
  "$1" "$2" "$3" "$4" test -x "$5" || { echo "expect.sh: nobody cannot run $5; skipped" >&2; exit 77; }
fi

out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
if [ -n "$stdout" ]; then
  "$@" >"$stdout" 2>"$out"
else
  "$@" >"$out" 2>&1
fi
rc=$?
cat "$out"

failed=0
if [ "$status" = nonzero ]; then
  [ "$rc" -ne 0 ] || { echo "expect.sh: exit status 0, wanted nonzero" >&2; failed=1; }
elif [ "$rc" -ne "$status" ]; then
  echo "expect.sh: exit status $rc, wanted $status" >&2
  failed=1
fi
printf '%s' "$patterns" | while IFS= read -r p; do
  grep -E -q -e "$p" "$out" || { echo "expect.sh: the output does not match: $p" >&2; exit 1; }
done || failed=1
printf '%s' "$absent" | while IFS= read -r p; do
  [ ! -e "$p" ] || { echo "expect.sh: $p exists" >&2; exit 1; }
done || failed=1
exit $failed
