# Sourced by scripts/test-browser.sh and scripts/test-scaleout.sh (from the repository root):
# installs what the browser tests need when it is missing (Debian's chromium + chromium-driver,
# a venv at .venv-test with pinned packages) and sets `venv` and `sudo`.
# --- Debian packages (the two font packages give the screenshot its CJK and symbol glyphs) ---
packages=(chromium chromium-driver fonts-droid-fallback fonts-symbola)
command -v python3 >/dev/null || packages+=(python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  echo "installing: $*" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# --- Python packages, pinned (the direct ones first, then what they pull in) ---
pins=(
  pytest==9.2.0 selenium==4.51.0 sseclient-py==1.9.0 requests==2.34.2
  attrs==26.1.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3 h11==0.16.0 idna==3.20
  iniconfig==2.3.1 outcome==1.3.0.post0 packaging==26.4 pluggy==1.7.0 Pygments==2.21.0
  PySocks==1.7.1 sniffio==1.3.1 sortedcontainers==2.4.0 trio==0.35.0 trio-websocket==0.12.2
  typing_extensions==4.16.0 urllib3==2.8.0 websocket-client==1.9.2 wsproto==1.3.2
)
venv=.venv-test
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "${pins[*]}" ] || ! "$venv/bin/python" -c "" 2>/dev/null; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$venv/.pins"
fi
