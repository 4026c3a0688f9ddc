# The Makefile rules of ngx_http_auth_jwt_module (see config): cargo builds the crate as a
# static library against this configured NGINX tree, always (cargo tracks its own sources),
# with the crate's default features off: no vendored NGINX, and no `ngx_modules` table of
# its own (NGINX's objs/ngx_http_auth_jwt_module_modules.c is the module's list).

case "$NGX_OBJS" in
    /*) ngx_auth_jwt_objs=$NGX_OBJS ;;
    *)  ngx_auth_jwt_objs=$PWD/$NGX_OBJS ;;
esac

cat << END                                                    >> $NGX_MAKEFILE

.PHONY: $NGX_AUTH_JWT_LIB

$NGX_AUTH_JWT_LIB:
	NGINX_BUILD_DIR="$ngx_auth_jwt_objs" NGINX_SOURCE_DIR="$PWD" \\
	$NGX_AUTH_JWT_CARGO rustc --lib --release --crate-type staticlib \\
		--manifest-path "$ngx_addon_dir/Cargo.toml" \\
		--no-default-features \\
		--target-dir "$NGX_AUTH_JWT_TARGET" \$(NGX_RUSTC_OPT)

$NGX_OBJS${ngx_dirsep}ngx_http_auth_jwt_module$ngx_modext:	$NGX_AUTH_JWT_LIB

END
