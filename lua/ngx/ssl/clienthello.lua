-- ngx.ssl.clienthello for golapis: not available.  It serves nginx's
-- ssl_client_hello_by_lua, and behind fastcgi_pass golapis never sees a
-- TLS handshake: TLS ends at nginx.

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.ssl.clienthello is not available in golapis "
      .. "(TLS ends at nginx)", 3)
