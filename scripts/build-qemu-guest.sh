#!/bin/sh
# Build a small Linux guest for QEMU (software emulation) that the VM isolation tests boot and
# reach over SSH: a Debian cloud kernel plus an initramfs holding busybox and the host's OpenSSH
# sshd (with internal-sftp), root's password set from CIRRUS_QEMU_GUEST_PASSWORD.
#
# Usage (as root, Debian bookworm):  sh scripts/build-qemu-guest.sh CACHE_DIR
#
# OpenSSH rather than dropbear: like the sshd of a real VM image it starts every session in a new
# session and process group (the VM isolation kills a script's leftovers by group; dropbear's
# commands share its connection process's group), and with `-r` and one ed25519 key it answers
# sooner under emulation than dropbear does.
#
# Output in CACHE_DIR:
#   vmlinuz             the kernel of the current linux-image-cloud-amd64 dependency
#   initramfs.cpio.gz   busybox + sshd + virtio modules; /init starts sshd
#   manifest.json       {"recipe", "user", "password", "kernel_version", "kernel_package",
#                        "ssh_server"}
#
# Idempotent: when the manifest already describes this kernel package, password and version of
# this script, the script only checks that the files are there. Nothing is written outside
# CACHE_DIR except the Debian packages qemu-system-x86, busybox-static and openssh-server,
# installed when missing (policy-rc.d keeps a newly installed sshd from starting). The kernel is
# fetched with `apt-get download` of its exact package name (a glob would fetch every matching
# kernel) and unpacked in a temporary directory.
set -eu

# Any change to this script makes a new guest: the manifest records the script's checksum.
RECIPE="$(sha256sum "$0" | cut -c1-16)"
USER_NAME=root
PASSWORD="${CIRRUS_QEMU_GUEST_PASSWORD:-cirrus-guest}"
META_PACKAGE=linux-image-cloud-amd64
# Load order matters: each module needs the ones before it. virtio-rng feeds the guest's entropy
# pool so sshd never waits for randomness.
MODULES="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover
drivers/net/net_failover drivers/net/virtio_net drivers/char/hw_random/virtio-rng"

log() { printf 'build-qemu-guest: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 CACHE_DIR"
[ "$(id -u)" = 0 ] || die "must run as root"
case "$PASSWORD" in
*'"'* | *'\'*) die "CIRRUS_QEMU_GUEST_PASSWORD must not contain a double quote or a backslash" ;;
esac
mkdir -p "$1"
CACHE="$(cd "$1" && pwd)"
# One build at a time per cache directory (test sessions may start side by side).
exec 9>"$CACHE/.lock"
flock 9

missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
[ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-server"
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
    log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # the list is word-split on purpose
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The exact kernel package the meta package points at today (e.g. linux-image-6.1.0-56-cloud-amd64).
resolve_kernel() {
    apt-cache depends "$META_PACKAGE" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
KPKG="$(resolve_kernel || true)"
if [ -z "$KPKG" ]; then
    apt-get update -qq
    KPKG="$(resolve_kernel)"
fi
[ -n "$KPKG" ] || die "apt-cache cannot resolve $META_PACKAGE to a kernel package"
KV="${KPKG#linux-image-}"

manifest_field() {
    sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$CACHE/manifest.json" 2>/dev/null | head -n 1
}
if [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/initramfs.cpio.gz" ] &&
    [ "$(manifest_field recipe)" = "$RECIPE" ] &&
    [ "$(manifest_field kernel_package)" = "$KPKG" ] &&
    [ "$(manifest_field password)" = "$PASSWORD" ]; then
    log "up to date: $CACHE (kernel $KV)"
    exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/root"

# apt-get download writes into the current directory; `_apt` must be able to write there.
download() {
    (cd "$WORK" && apt-get download -qq "$1" >/dev/null 2>&1) && return 0
    # The lists may name a version the mirror no longer has: refresh them once and retry.
    apt-get update -qq
    (cd "$WORK" && apt-get download -qq "$1" >/dev/null)
}
chmod 755 "$WORK"
log "downloading $KPKG"
download "$KPKG"
dpkg -x "$WORK/${KPKG}"_*.deb "$WORK/kernel"
[ -s "$WORK/kernel/boot/vmlinuz-$KV" ] || die "$KPKG holds no /boot/vmlinuz-$KV"

log "building the initramfs (kernel $KV)"
mkdir -p "$R/bin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/mods" \
    "$R/usr/sbin" "$R/usr/lib" "$R/run" "$R/var/log"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done

# Copy a dynamically linked program and the shared libraries it loads.
copy_program() {
    mkdir -p "$R$(dirname "$2")"
    cp "$1" "$R$2"
    for lib in $(ldd "$1" | grep -o '/[^ ]*\.so[^ ]*'); do
        [ -e "$R$lib" ] && continue
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
}

copy_program /usr/sbin/sshd /usr/sbin/sshd
mkdir -p "$R/etc/ssh" "$R/run/sshd" "$R/var/empty"
chmod 0755 "$R/run/sshd"
# One ed25519 key: loading and signing with RSA keys is slow under emulation.
ssh-keygen -q -t ed25519 -N '' -C qemu-guest -f "$R/etc/ssh/ssh_host_ed25519_key"
cat >"$R/etc/ssh/sshd_config" <<'SSHDEOF'
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
AllowTcpForwarding yes
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
SSHDEOF
SERVER_VERSION="$(/usr/sbin/sshd -V 2>&1 | head -n 1)"
# -r: no re-exec of sshd for every connection, which costs about a second of emulated CPU
# (and every probe of a booting guest's port is a connection). Kept only where accepted.
if /usr/sbin/sshd -r -V >/dev/null 2>&1; then
    START_SERVER='/usr/sbin/sshd -D -e -r &'
else
    START_SERVER='/usr/sbin/sshd -D -e &'
fi

moddir="$WORK/kernel/lib/modules/$KV"
: >"$R/etc/modules-order"
for m in $MODULES; do
    name="$(basename "$m")"
    if [ -f "$moddir/kernel/$m.ko" ]; then
        cp "$moddir/kernel/$m.ko" "$R/mods/$name.ko"
        echo "$name" >>"$R/etc/modules-order"
    elif ! grep -q "^kernel/$m.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
        die "kernel $KV has neither a module nor a built-in driver kernel/$m.ko"
    fi
done

# "sshd" is OpenSSH's privilege separation user.
printf '%s:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' "$USER_NAME" >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$R/etc/nsswitch.conf"
printf '127.0.0.1 localhost qemu-guest\n' >"$R/etc/hosts"
hash="$(printf '%s\n' "$PASSWORD" | /bin/busybox mkpasswd -m sha512 -P 0)"
printf '%s:%s:19000:0:99999:7:::\n' "$USER_NAME" "$hash" >"$R/etc/shadow"
chmod 600 "$R/etc/shadow"
printf '/bin/sh\n' >"$R/etc/shells"
printf 'export PATH=/bin:/usr/sbin:/usr/lib\nexport HOME=/root\n' >"$R/etc/profile"
printf 'qemu-guest\n' >"$R/etc/hostname"
mknod "$R/dev/console" c 5 1
mknod "$R/dev/null" c 1 3

{
    cat <<'INIT'
#!/bin/sh
# PID 1 of the test guest: mount the pseudo file systems, load the virtio drivers, bring up the
# network QEMU's user mode emulates (10.0.2.0/24 exists only inside QEMU) and serve SSH.
export PATH=/bin:/usr/sbin:/usr/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
hostname -F /etc/hostname
for m in $(cat /etc/modules-order); do insmod "/mods/$m.ko"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "qemu-guest: starting the SSH server"
INIT
    printf '%s\n' "$START_SERVER"
    cat <<'INIT'
# PID 1 must never exit (the kernel would panic); it also reaps orphaned children.
while true; do sleep 3600; done
INIT
} >"$R/init"
chmod 755 "$R/init"

(cd "$R" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$WORK/initramfs.cpio.gz")
cp "$WORK/kernel/boot/vmlinuz-$KV" "$WORK/vmlinuz"
cat >"$WORK/manifest.json" <<EOF
{
  "recipe": "$RECIPE",
  "user": "$USER_NAME",
  "password": "$PASSWORD",
  "kernel_version": "$KV",
  "kernel_package": "$KPKG",
  "ssh_server": "$(printf '%s' "$SERVER_VERSION" | tr -d '"\\')"
}
EOF
# Replace the files last and the manifest after them, so an interrupted build is never taken
# for a finished one.
rm -f "$CACHE/manifest.json"
mv "$WORK/vmlinuz" "$CACHE/vmlinuz"
mv "$WORK/initramfs.cpio.gz" "$CACHE/initramfs.cpio.gz"
mv "$WORK/manifest.json" "$CACHE/manifest.json"
log "ready: $CACHE (kernel $KV, user $USER_NAME)"
