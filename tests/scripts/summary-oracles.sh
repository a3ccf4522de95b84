#!/usr/bin/env bash
# A test whose oracle is missing fails, and ci/install-deps.sh provides every oracle:
#   - zstd-cli.sh run where no `zstd` is on PATH must fail and say so, not pass;
#   - each oracle tool the tests run (zstd, cpio, cmp) comes from a package that
#     ci/install-deps.sh installs. Exit 0 passes.
set -uo pipefail
cd "$(dirname "$0")/../.."
bad=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A PATH with only what the script needs to reach its oracle check.
mkdir -p "$work/bin"
for tool in dirname mkdir; do
    ln -s "$(command -v "$tool")" "$work/bin/$tool"
done
if PATH="$work/bin" BUILD="$work/build" "$(command -v bash)" tests/scripts/zstd-cli.sh > "$work/out" 2>&1; then
    echo "FAIL zstd-cli.sh passed without the zstd tool:"
    cat "$work/out"
    bad=1
elif ! grep -q "zstd" "$work/out"; then
    echo "FAIL zstd-cli.sh failed without zstd but did not say why:"
    cat "$work/out"
    bad=1
else
    echo "ok   zstd-cli.sh fails without zstd: $(head -1 "$work/out")"
fi

packages=$(sed -n '/^PACKAGES=(/,/^)/p' ci/install-deps.sh)
for tool in zstd cpio cmp; do
    path=$(command -v "$tool") || { echo "FAIL oracle $tool is not installed"; bad=1; continue; }
    # Merged /usr: dpkg may know the file as /bin/X or as /usr/bin/X.
    package=
    for candidate in "$(readlink -f "$path")" "/bin/$tool" "/usr/bin/$tool"; do
        [ -n "$package" ] || package=$(dpkg -S "$candidate" 2> /dev/null | head -1 | cut -d: -f1)
    done
    if [ -z "$package" ]; then
        echo "FAIL oracle $tool ($path) belongs to no Debian package"
        bad=1
    elif grep -qw -- "$package" <<< "$packages"; then
        echo "ok   oracle $tool comes from $package, which ci/install-deps.sh installs"
    else
        echo "FAIL oracle $tool comes from $package, which ci/install-deps.sh does not install"
        bad=1
    fi
done
exit "$bad"
