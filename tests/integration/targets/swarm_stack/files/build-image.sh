#!/bin/sh
# Build a tiny HTTP image from Debian's static busybox: build-image.sh REPO TAG
# /www/index.html says "TAG"; CMD runs busybox httpd on :8080. Idempotent: an existing image is kept.
set -eu
repo="$1"
tag="$2"
if docker image inspect "$repo:$tag" >/dev/null 2>&1; then
    echo "exists"
    exit 0
fi
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    apt-get install -y busybox-static >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/run/secrets"
cp /bin/busybox "$root/bin/busybox"
for applet in sh httpd cat sleep wget ls echo; do
    ln -s busybox "$root/bin/$applet"
done
echo "$tag" >"$root/www/index.html"
tar -C "$root" -c . | docker import -c 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]' - "$repo:$tag" >/dev/null
echo "built"
