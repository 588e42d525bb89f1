package templates

import "strconv"

// replicaColors is how many colours the stylesheet has for replicas
// (.replica-c0 to .replica-c7 in static/css/shop.css; TestReplicaPalette
// checks the two agree).
const replicaColors = 8

// replicaClass returns the CSS class that colours everything belonging to a
// replica, from the number its name ends with: app-1 is replica-c0, app-2
// replica-c1, ..., app-9 replica-c0 again, so any number of replicas has
// colours and a replica keeps its colour across pages. A name without a
// number gets one from its letters; no name gets the neutral
// replica-unknown. This is the only place with the rule: the admin
// page's replica boxes carry the class in data-replica-class, and
// static/js/admin.js reads it there for the replicas of the live requests.
func replicaClass(name string) string {
	if name == "" {
		return "replica-unknown"
	}
	digits := len(name)
	for digits > 0 && name[digits-1] >= '0' && name[digits-1] <= '9' {
		digits--
	}
	n := 0
	if digits < len(name) {
		tail := name[digits:]
		if len(tail) > 6 {
			tail = tail[len(tail)-6:]
		}
		n, _ = strconv.Atoi(tail)
		n--
	} else {
		for _, r := range name {
			n += int(r)
		}
	}
	return "replica-c" + strconv.Itoa(((n%replicaColors)+replicaColors)%replicaColors)
}
