package durable

import "github.com/centaur-dev/workflow-operator/durable/internal/core"

// DefaultVersion is what GetVersion returns to a run that went past the call on code that did
// not make it yet: the version of the code before the change.
const DefaultVersion = core.DefaultVersion

// GetVersion lets a workflow's code change while runs are in flight, as Temporal's
// workflow.GetVersion does. Put it where the code changes and branch on what it returns:
//
//	v := durable.GetVersion(ctx, "fetch-from-v2-api", durable.DefaultVersion, 1)
//	if v == durable.DefaultVersion {
//		page, err = durable.Step(ctx, "fetch", fetchV1) // what runs started before the change did
//	} else {
//		page, err = durable.Step(ctx, "fetch-v2", fetchV2)
//	}
//
// changeID names the change, unique within the run like every primitive's name. The first run
// to reach the call records maxSupported in its journal (an entry of kind Version named
// changeID) and gets it back on every replay. A run that went past this point before the code
// had the call, one whose journal holds entries the handler has not reached yet but no record
// of changeID, gets DefaultVersion and records nothing, so it replays the branch it took; a run
// started before the change that had not reached this point yet takes the new code. Calling
// GetVersion again with the same changeID later in the run returns the same version.
//
// Raise maxSupported with each further change under the same changeID. Once no run of an old
// version is in flight, raise minSupported to drop its branch: a run whose version lies
// outside [minSupported, maxSupported] fails with reason UnsupportedVersion, naming the change,
// the version and the supported range. minSupported below DefaultVersion or above maxSupported
// fails the run with reason HandlerError.
//
// Like Now, GetVersion may not be called from a goroutine the handler started (that fails the
// run with reason Misuse, and GetVersion returns DefaultVersion); nor inside a step's function.
//
// A workflow file calls it as ctx.get_version(change_id, min_supported, max_supported), with
// DEFAULT_VERSION for DefaultVersion.
func GetVersion(ctx *Context, changeID string, minSupported, maxSupported int) int {
	return core.GetVersion(ctx, changeID, minSupported, maxSupported)
}
