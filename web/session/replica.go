package session

import "regexp"

// ReplicaNamePattern is the form of a replica's name, unanchored: 1 to 32
// lower-case letters, digits, '-' or '_', starting with a letter or digit.
// A sticky session's ID starts with the name of the replica that holds it
// (StickyIDs), so the name must be safe in cookies, URLs and log lines.
const ReplicaNamePattern = `[a-z0-9][a-z0-9_-]{0,31}`

var replicaName = regexp.MustCompile(`^` + ReplicaNamePattern + `$`)

// ValidReplicaName reports whether s is a replica name (ReplicaNamePattern).
func ValidReplicaName(s string) bool { return replicaName.MatchString(s) }
