-- ngx.ssl.session for golapis: not available.  It serves nginx's TLS
-- session cache hooks (ssl_session_fetch_by_lua, ssl_session_store_by_lua),
-- and behind fastcgi_pass golapis never sees a TLS session: TLS ends at
-- nginx.

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.ssl.session is not available in golapis (TLS ends at nginx)", 3)
