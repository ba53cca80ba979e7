package manager

// The IANA time zone database, built into the binary (about 450 KB), so that a
// WorkflowSchedule's spec.timeZone works in a minimal container image with no /usr/share/zoneinfo.
import _ "time/tzdata"
