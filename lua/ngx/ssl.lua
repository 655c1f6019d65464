-- ngx.ssl for golapis: not available.  It serves nginx's TLS handshake
-- (ssl_certificate_by_lua and the like), and behind fastcgi_pass golapis
-- never sees one: TLS ends at nginx.

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.ssl is not available in golapis (TLS ends at nginx)", 3)
