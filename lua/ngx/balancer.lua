-- ngx.balancer for golapis: not available.  It picks the upstream server
-- nginx proxies a request to (balancer_by_lua), and golapis is what nginx
-- proxies to, not a proxy.

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.balancer is not available in golapis (upstream balancing "
      .. "is nginx's, in front of golapis)", 3)
