// Command perfref is the bare server of BenchmarkStack's reference: one
// net/http handler that answers every request with a small JSON body, as
// GET /api/ping does, and nothing else (no middleware, no sessions, no
// log). Three of them, each with GOMAXPROCS=1 as a replica has, behind an
// nginx with nothing but a keep-alive upstream (nginx.conf here), show
// what this machine and Docker's bridge allow any Go server behind any
// nginx; the stack's own numbers are read against them.
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	name, _ := os.Hostname()
	body := []byte(`{"mode":"none","replica":"` + name + `"}`)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
