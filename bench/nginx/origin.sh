# Sourced by the benchmark scripts: an nginx origin on 127.0.0.1:$NPORT serving /1k (1 KiB),
# from a temporary folder, stopped with everything in `pids` when the script exits.
# Sets NGINX_DIR and U (the 1 KiB URL); installs nginx if it is missing.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
}
NGINX_DIR=$(mktemp -d /tmp/streamproxy-nginx.XXXXXX)
head -c 1024 /dev/zero | tr '\0' 'x' > "$NGINX_DIR/1k"
sed -e "s|@DIR@|$NGINX_DIR|g" -e "s|@PORT@|$NPORT|g" bench/nginx/static.conf > "$NGINX_DIR/nginx.conf"
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
