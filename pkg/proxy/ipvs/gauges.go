package ipvs

import "github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"

// weightZeroCount is the number of real servers at weight 0 per virtual
// server of the observed kernel state, and their total: a partial sync
// recounts only the virtual servers it planned, not the whole table.
type weightZeroCount struct {
	byService map[ipvs.ServiceKey]int
	total     int
}

// countWeightZero updates the real-server gauges after a plan was applied
// within sc (nil: the whole table, a full sync).
func (p *Proxier) countWeightZero(sc *scope) {
	c := &p.weightZero
	if sc == nil || c.byService == nil {
		c.byService, c.total = make(map[ipvs.ServiceKey]int), 0
		for key := range p.kernel.services { // an implied one has none at weight 0
			c.recount(key, p.kernel.weightZero(key))
		}
	} else {
		for key := range sc.services {
			c.recount(key, p.kernel.weightZero(key))
		}
	}
	family := string(p.cfg.IPFamily)
	p.metrics.RealServersWeightZero.WithLabelValues(family).Set(float64(c.total))
	p.metrics.RealServersFinishing.WithLabelValues(family).Set(float64(len(p.finishing)))
}

// recount replaces the count of one virtual server.
func (c *weightZeroCount) recount(key ipvs.ServiceKey, n int) {
	c.total -= c.byService[key]
	delete(c.byService, key)
	if n > 0 {
		c.byService[key] = n
		c.total += n
	}
}
