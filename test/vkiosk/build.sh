#!/usr/bin/env bash
# Builds what the virtual kiosk (test/vkiosk) needs on a Debian 12 x86_64 machine, as root:
#
#   - installs qemu-system-x86 and the compiler for kernel modules (apt-get, only what is missing);
#   - downloads Debian's current 6.1 kernel image, its headers, kbuild and the kernel source
#     (about 225 MB; `apt-get download` into the cache, so the host's /boot is not touched);
#   - builds gpio-sim.ko out of tree (Debian's kernel is built without CONFIG_GPIO_SIM), with
#     irq_sim.c linked in and patched to call generic_handle_irq(), because irq_to_desc() is not
#     exported to modules;
#   - extracts the uncompressed vmlinux (QEMU boots it through its PVH entry, about twice as
#     fast as the bzImage under TCG) and copies configfs.ko and e1000.ko from the image.
#
# The result goes to $CACHE/<kernel release>/out and $CACHE/current points at it, where
# CACHE=${KENTONGAN_VKIOSK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kentongan-vkiosk}.
# A second run finds it there and only checks that QEMU is installed. KENTONGAN_VKIOSK_REBUILD=1
# rebuilds from the cached downloads. Kernel sources and binaries are never put in the repository.
set -euo pipefail

CACHE="${KENTONGAN_VKIOSK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kentongan-vkiosk}"
log() { echo "vkiosk build: $*" >&2; }
die() { echo "vkiosk build: $*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "needs an x86_64 host (found $(uname -m))"
command -v apt-get >/dev/null || die "needs Debian's apt-get"

# Tools: QEMU to run the guest; make, gcc-12 (the compiler Debian's 6.1 kernel is built with), xz
# and binutils to build the module.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v make >/dev/null || need+=(make)
command -v gcc-12 >/dev/null || need+=(gcc-12 libc6-dev)
command -v xz >/dev/null || need+=(xz-utils)
command -v strings >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "needs root to install ${need[*]}"
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${KENTONGAN_VKIOSK_REBUILD:-}" ] && [ -f "$CACHE/current/.complete" ]; then
  log "up to date: $CACHE/current ($(cat "$CACHE/current/release"))"
  exit 0
fi

# The kernel Debian currently ships: linux-image-amd64 depends on linux-image-<abi>-amd64.
image=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$image" ]; then
  [ "$(id -u)" = 0 ] || die "apt's package lists are missing; run apt-get update as root"
  apt-get update -qq
  image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$image" ] || die "cannot find the kernel package linux-image-amd64 depends on"
release=${image#linux-image-}             # 6.1.0-56-amd64
abi=${release%-amd64}                     # 6.1.0-56
version=$(apt-cache show --no-all-versions "$image" | awk '/^Version:/ {print $2; exit}')  # 6.1.192-2
series=${release%%.0-*}                   # 6.1
log "kernel $release (package version $version)"

work="$CACHE/$release"
out="$work/out"
debs="$CACHE/deb"
mkdir -p "$debs"

pkgs=("$image" "linux-headers-$release" "linux-headers-$abi-common"
      "linux-kbuild-$series=$version" "linux-source-$series=$version")
missing=()
for p in "${pkgs[@]}"; do
  name=${p%%=*}
  ls "$debs/${name}_${version}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${missing[*]}"
  # _apt cannot write to root's cache; apt then downloads as root and says so on stderr.
  (cd "$debs" && apt-get download -qq "${missing[@]}" 2> >(grep -v 'unsandboxed as root' >&2))
fi
deb() { ls "$debs/${1}_${version}_"*.deb | head -n1; }

rm -rf "$work"
mkdir -p "$work/root" "$work/mod" "$out"

# The image package: only the kernel and the two modules the guest loads.
log "unpacking"
kdir="./lib/modules/$release/kernel"
dpkg-deb --fsys-tarfile "$(deb "$image")" | tar -x -C "$work/root" \
  "./boot/vmlinuz-$release" "$kdir/fs/configfs/configfs.ko" \
  "$kdir/drivers/net/ethernet/intel/e1000/e1000.ko"
for p in "linux-headers-$release" "linux-headers-$abi-common" "linux-kbuild-$series"; do
  dpkg -x "$(deb "$p")" "$work/root"
done
# The headers' Makefile includes the common part by absolute path under /usr/src.
hdr="$work/root/usr/src/linux-headers-$release"
sed -i "s|^include /usr/src/|include $work/root/usr/src/|" "$hdr/Makefile"

# From the source only the three files of the module and extract-vmlinux.
src="linux-source-$series"
dpkg-deb --fsys-tarfile "$(deb "linux-source-$series")" |
  tar -xO "./usr/src/$src.tar.xz" |
  xz -dc | tar -x -C "$work" "$src/drivers/gpio/gpio-sim.c" "$src/drivers/gpio/gpiolib.h" \
    "$src/kernel/irq/irq_sim.c" "$src/scripts/extract-vmlinux"

log "building gpio-sim.ko"
cp "$work/$src/drivers/gpio/gpio-sim.c" "$work/mod/gpio-sim-core.c"
cp "$work/$src/drivers/gpio/gpiolib.h" "$work/$src/kernel/irq/irq_sim.c" "$work/mod/"
grep -q 'handle_simple_irq(irq_to_desc(irqnum));' "$work/mod/irq_sim.c" ||
  die "irq_sim.c of $version no longer calls handle_simple_irq(irq_to_desc(irqnum)); update the patch"
sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$work/mod/irq_sim.c"
printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-core.o irq_sim.o\n' > "$work/mod/Kbuild"
make -s -C "$hdr" M="$work/mod" modules >"$work/mod/build.log" 2>&1 || {
  cat "$work/mod/build.log" >&2; die "building gpio-sim.ko failed"; }

log "extracting vmlinux"
sh "$work/$src/scripts/extract-vmlinux" "$work/root/boot/vmlinuz-$release" > "$out/vmlinux"
[ -s "$out/vmlinux" ] || die "extract-vmlinux produced nothing"

cp "$work/root/$kdir/fs/configfs/configfs.ko" \
   "$work/root/$kdir/drivers/net/ethernet/intel/e1000/e1000.ko" \
   "$work/mod/gpio-sim.ko" "$out/"
# The guest has no modprobe: modules.list is the load order, dependencies first.
for m in configfs e1000 gpio-sim; do
  deps=$(strings -a "$out/$m.ko" | sed -n 's/^depends=//p')
  for d in ${deps//,/ }; do
    case "$d" in configfs) ;; *) die "$m.ko depends on $d, which the guest does not load";; esac
  done
done
printf 'configfs.ko\ngpio-sim.ko\ne1000.ko\n' > "$out/modules.list"
echo "$release" > "$out/release"
echo "$version" > "$out/version"
touch "$out/.complete"

# Keep the downloads and the result; the unpacked tree is rebuilt from the downloads if needed.
rm -rf "$work/root" "$work/$src" "$work/mod"
ln -sfn "$out" "$CACHE/current"
log "done: $CACHE/current ($(du -sh "$out" | cut -f1))"
