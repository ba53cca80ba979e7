package core

// SetCallSite tells the engine how the workflow's loader finds the place in the workflow's
// source where the handler asks for the primitive name: a Starlark or Python loader knows the
// interpreter's call stack, which the engine cannot see. The engine calls site only when a
// host asks (Hooks.Reached), on the handler's goroutine while the handler waits for the
// primitive, so site may read the stack as it stands at that call. Call SetCallSite from the
// handler, before its first primitive.
func SetCallSite(ctx *Context, site func(name string) string) {
	if ctx.exec.onHandler("SetCallSite", "") != nil {
		return
	}
	ctx.exec.site = site
}

// callSite is where the handler asks for the primitive name, which it reaches now; "" when
// its loader does not say.
func (e *execution) callSite(name string) string {
	if e.site == nil {
		return ""
	}
	return e.site(name)
}
