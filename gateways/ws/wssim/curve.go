package wssim

import (
	"math"
	"math/rand/v2"
	"time"
)

// curve is a sensor reading: a slow sine around base (a compressed day)
// plus a little noise, the way a room's temperature drifts.
type curve struct {
	name, format     string
	base, amp, noise float64
	period           time.Duration
	phase            float64
}

// sensorCurves are the node's sensors, each with its own random phase.
func sensorCurves(rnd *rand.Rand, period time.Duration) []curve {
	cs := []curve{
		{name: "temperature", format: "%.1f°C", base: 21.5, amp: 3, noise: 0.1},
		{name: "pressure", format: "%.2fhPa", base: 1013.25, amp: 4, noise: 0.05},
		{name: "humidity", format: "%.2f%%", base: 45, amp: 8, noise: 0.3},
	}
	for i := range cs {
		cs[i].period = period
		cs[i].phase = rnd.Float64() * 2 * math.Pi
	}
	return cs
}

// at is the reading t after the node started.
func (c curve) at(t time.Duration, rnd *rand.Rand) float64 {
	x := 2 * math.Pi * t.Seconds() / c.period.Seconds()
	return c.base + c.amp*math.Sin(x+c.phase) + c.noise*rnd.NormFloat64()
}
