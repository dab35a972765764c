# Shared by scripts/quickstart, scripts/run-tests and the benchmarks:
# install what is missing from Debian's archive, quietly and unattended.

# Debian packages the project needs to build and test, by the command or
# file that shows each is present.
VMM_DEPS=(
	"meson:meson"
	"ninja:ninja-build"
	"pkg-config:pkg-config"
	"gcc:gcc"
	"python3:python3"
	"unshare:util-linux"
	"ip:iproute2"
	"sysctl:procps"
	"/usr/include/liburing.h:liburing-dev"
	"/usr/include/cmocka.h:libcmocka-dev"
	"/usr/include/linux/kvm.h:linux-libc-dev"
)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_packages CHECK:PACKAGE...: apt-get install the packages whose check fails.
ensure_packages() {
	local missing=() entry check pkg
	for entry in "$@"; do
		check=${entry%%:*}
		pkg=${entry#*:}
		if [[ $check == /* ]]; then
			[[ -e $check ]] && continue
		else
			command -v "$check" >/dev/null 2>&1 && continue
		fi
		missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	local sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "missing packages (${missing[*]}) and not root: install them or run as root"
		sudo=(sudo)
	fi
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq || die "apt-get update failed"
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

ensure_deps() {
	ensure_packages "${VMM_DEPS[@]}"
}

# kvm_usable: 0 if /dev/kvm can be opened for reading and writing.
kvm_usable() {
	[[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]]
}
