package templates

import (
	"encoding/json"
	"strconv"
)

// faultInfo is what the admin page's scorecard shows of a fault: its row
// header.
type faultInfo struct {
	// Label names the fault in a few words.
	Label string `json:"label"`
	// Description says what the fault does, in a phrase.
	Description string `json:"description"`
}

// faults labels the scorecard's rows, keyed by the fault's name as the
// server reports it (the Fault* names of web/simulator; TestFaultLabels
// keeps the table complete). The scorecard panel carries the table in
// data-fault-labels, where static/js/admin.js looks a row's label up; a
// fault the table lacks shows its name.
var faults = map[string]faultInfo{
	"none":               {"No fault", "the baseline: shoppers only"},
	"replica-crash":      {"Replica crash", "SIGKILL of the replica with the most sticky shoppers; it restarts"},
	"replica-freeze":     {"Replica freeze", "that replica holds every request for 4 s"},
	"replica-stop":       {"Replica stop", "a graceful stop (SIGTERM); it restarts"},
	"redis-primary-kill": {"Redis primary killed", "SHUTDOWN NOSAVE; the Sentinels promote a replica"},
	"memcached-restart":  {"Memcached restart", "one Memcached server's data gone"},
	"memcached-full":     {"Memcached full", "the servers filled until they evict"},
	"concurrent-adds":    {"20 concurrent adds", "from one browser, all at once"},
	"docker-kill":        {"docker kill", "of a replica"},
	"docker-stop":        {"docker stop", "of a replica"},
	"docker-pause":       {"docker pause", "of a replica"},
	"docker-disconnect":  {"Network disconnect", "a replica cut off from the network"},
	"lb-kill":            {"Load balancer killed", "docker kill of the shoppers' load balancer"},
	"scale-in":           {"Scale in", "one replica fewer"},
	"rolling-deploy":     {"Rolling deploy", "every replica replaced, one at a time"},
}

// faultLabelsJSON is the faults table as JSON, for data-fault-labels.
func faultLabelsJSON() string {
	b, err := json.Marshal(faults)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// scorecardColumns is the number of columns of the scorecard's matrix:
// the faults' and one per mode.
func scorecardColumns(modes []string) string {
	return strconv.Itoa(len(modes) + 1)
}
