#!/bin/sh
# Runs every test program given and the CLI tests, then prints the total as
# "N passed, N failed" (the line CI reads). Exit status non-zero if anything failed.
passed=0; failed=0; bad=""
for t in "$@" tests/cli.sh; do
    case "$t" in *.sh) out=$(sh "$t" 2>&1); rc=$? ;; *) out=$("$t" 2>&1); rc=$? ;; esac
    printf '%s\n' "$out" | grep -v '^ok ' | tail -n 30
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf " %s" "$line" | sed -E "s/.*[^0-9]([0-9]+) passed.*/\\1/"); f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    [ -n "$line" ] || { p=0; f=1; }
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    [ "$rc" -ne 0 ] && bad="$bad $t"
    passed=$((passed + p)); failed=$((failed + f))
done
[ -n "$bad" ] && echo "failing:$bad"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
