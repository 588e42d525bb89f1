package web

import "net/http"

// simulations holds the traffic simulator runs this replica started.
type simulations struct {
	replica string
}

func newSimulations(replica string) *simulations { return &simulations{replica: replica} }

// addSimulationRoutes adds the simulator's endpoints.
func (a *admin) addSimulationRoutes(mux *http.ServeMux) {}
