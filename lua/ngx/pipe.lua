-- ngx.pipe for golapis: not available yet.  Spawning processes and
-- talking to them without blocking the worker needs an engine API that
-- golapis does not have yet (child watchers and pipe I/O on the worker's
-- loop, as for cosockets).

-- drop require's mark, so that requiring it again gives this error again
-- rather than "loop or previous error loading module"
package.loaded[...] = nil

error("ngx.pipe is not available in golapis yet", 3)
