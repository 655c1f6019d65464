-- ngx.ocsp for golapis: not available.  It does OCSP stapling for nginx's
-- TLS handshake (in ssl_certificate_by_lua), and behind fastcgi_pass golapis
-- never sees one: TLS ends at nginx.

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.ocsp is not available in golapis (TLS ends at nginx)", 3)
