# Sourced by the benchmark scripts: an nginx origin on 127.0.0.1:$NPORT serving /1k (1 KiB),
# from a temporary folder, stopped with everything in `pids` when the script exits.
# NGINX_CONF names its config (bench/nginx/static.conf unless set; delay.conf adds W7's /slow/).
# Sets NGINX_DIR and U (the 1 KiB URL); installs nginx, and the echo module a config that loads
# it needs, if missing.
NGINX_CONF=${NGINX_CONF:-bench/nginx/static.conf}
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
}
if grep -q '^load_module .*ngx_http_echo_module' "$NGINX_CONF" && [ ! -e /usr/lib/nginx/modules/ngx_http_echo_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnginx-mod-http-echo >/dev/null
fi
NGINX_DIR=$(mktemp -d /tmp/streamproxy-nginx.XXXXXX)
head -c 1024 /dev/zero | tr '\0' 'x' > "$NGINX_DIR/1k"
# NGINX_SETUP, if set, runs first (in this shell, with NGINX_DIR set): files and certificates a
# config needs. NGINX_VARS="NAME=VALUE ..." fills in @NAME@ for each (more ports, say).
[ -z "${NGINX_SETUP:-}" ] || "$NGINX_SETUP"
nginx_sed=(-e "s|@DIR@|$NGINX_DIR|g" -e "s|@PORT@|$NPORT|g")
for v in ${NGINX_VARS:-}; do nginx_sed+=(-e "s|@${v%%=*}@|${v#*=}|g"); done
sed "${nginx_sed[@]}" "$NGINX_CONF" > "$NGINX_DIR/nginx.conf"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$NGINX_DIR"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
"$(command -v nginx || echo /usr/sbin/nginx)" -c "$NGINX_DIR/nginx.conf" & pids+=($!)
U=http://127.0.0.1:$NPORT/1k
