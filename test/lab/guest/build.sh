#!/usr/bin/env bash
# Builds Mold's lab guest template, a small bootable qcow2, from Debian's packages, and prints its path.
#
# The disk is one FAT volume (no partition table) that SYSLINUX boots, written with mtools (no loop
# mount): Debian's kernel (taken out of the linux-image package with dpkg-deb, not installed here), an
# initramfs with busybox, the few kernel modules a guest needs, dropbear and jq, and the guest's own
# files (rootfs/: the boot script that reads Mold's config drive). Needs root only to read
# /var/cache/moldlab; the packages are those .ci/run installs (PACKAGES below).
#
# Cached: the image is named by a hash of everything it is made from (this script, rootfs/, the
# versions of the packages, the kernel package), so it is built once per machine and again only
# when one of those changes. The kernel package is downloaded once (apt-get download) and kept in
# the cache, so later builds work offline. Timestamps are pinned, so the same inputs give the same bytes.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
cache=${MOLD_GUEST_CACHE:-/var/cache/moldlab/guest}
# What goes into the image (busybox-static, dropbear-bin, jq) and what builds it (the rest).
PACKAGES="busybox-static dropbear-bin jq syslinux syslinux-common mtools dosfstools cpio"
# Kernel modules the guest loads; their dependencies come along.
MODULES="virtio_pci virtio_blk virtio_net ata_piix sr_mod isofs vfat nls_cp437 nls_ascii button evdev"
DISK_MIB=64
EPOCH=1700000000 # every file's timestamp, so the same inputs give the same image

die() { echo "guest template: $*" >&2; exit 1; }

for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || die "the Debian package $p is missing (bash .ci/run installs it; or apt-get install $PACKAGES)"
done

# The kernel: the newest linux-image-*-amd64 package kept in the cache, else the one linux-image-amd64 names.
mkdir -p "$cache/debs"
kdeb=$(ls "$cache"/debs/linux-image-*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$kdeb" ]; then
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
  [ -n "$kpkg" ] || die "apt knows no linux-image-amd64 (run apt-get update first)"
  dl=$(mktemp -d "$cache/debs/.download.XXXXXX")
  chmod 755 "$dl" # apt-get download runs as _apt where it can
  (cd "$dl" && apt-get download -q "$kpkg" >&2) || { rm -rf "$dl"; die "apt-get download $kpkg failed"; }
  mv "$dl"/*.deb "$cache/debs/" && rm -rf "$dl"
  kdeb=$(ls "$cache"/debs/"$kpkg"_*.deb | sort -V | tail -n 1)
fi

key=$( {
  cat "$0"
  (cd "$here/rootfs" && find . -type f | sort | xargs sha256sum && find . | sort | xargs stat -c '%n %a')
  dpkg-query -W $PACKAGES
  basename "$kdeb"
} | sha256sum | cut -c1-16)
image="$cache/mold-guest-$key.qcow2"
if [ -f "$image" ]; then
  echo "$image"
  exit 0
fi

started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kdeb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
kmods="$work/kernel/lib/modules/$kver"

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,root,data,etc,lib/modules/"$kver"}
cp -a "$here/rootfs/." "$root/"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
ln -s bin/busybox "$root/init" # the kernel runs /init: busybox init, which reads /etc/inittab
ln -s bin "$root/sbin"
mkdir -p "$root/usr" && ln -s ../bin "$root/usr/bin" && ln -s ../bin "$root/usr/sbin"

# Dynamically linked programs with the libraries they load (ldd's list, at the same paths).
for program in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/jq; do
  cp "$program" "$root/bin/"
  for lib in $(ldd "$program" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done

# The modules and everything they depend on (from depmod's modules.dep of the whole kernel), then
# depmod again over what the guest keeps, for busybox's modprobe.
/bin/busybox depmod -b "$work/kernel" "$kver"
for m in $MODULES; do
  line=$(grep -E "/${m}\.ko:" "$kmods/modules.dep") || die "kernel $kver has no module $m"
  for rel in $(echo "$line" | tr -d ':'); do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$kmods/$rel" "$root/lib/modules/$kver/$rel"
  done
done
/bin/busybox depmod -b "$root" "$kver"

find "$root" -exec touch -h -d "@$EPOCH" {} +
(cd "$root" && find . | sort | cpio --quiet --reproducible -o -H newc) | gzip -9n > "$work/initrd.gz"

cat > "$work/syslinux.cfg" <<'EOF'
DEFAULT mold
PROMPT 0
TIMEOUT 0
LABEL mold
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200 quiet panic=10 nokaslr
EOF
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
touch -d "@$EPOCH" "$work/vmlinuz" "$work/initrd.gz" "$work/syslinux.cfg"

disk="$work/disk.img"
mkfs.vfat -C -n MOLDGUEST -i 4d4f4c44 --invariant "$disk" $((DISK_MIB * 1024)) >/dev/null
SOURCE_DATE_EPOCH=$EPOCH syslinux --install "$disk"
MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=$EPOCH mcopy -m -i "$disk" "$work/vmlinuz" "$work/initrd.gz" "$work/syslinux.cfg" ::

qemu-img convert -q -c -f raw -O qcow2 "$disk" "$image.part"
mv -f "$image.part" "$image"
# Older images of this cache are of older inputs.
find "$cache" -maxdepth 1 -name 'mold-guest-*.qcow2' ! -path "$image" -delete
echo "guest template: built $image ($(stat -c %s "$image") bytes, kernel $kver, initramfs $(stat -c %s "$work/initrd.gz") bytes) in $(( $(date +%s) - started )) s" >&2
echo "$image"
