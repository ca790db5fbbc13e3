package wssim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a simulated node is: a sensor node (the default) or one of
// the nodes the dashboard has a widget for (Pyaiot's robot, ribot, js and
// webcam resources).
type Kind string

// The kinds of simulated node.
const (
	// KindSensor pushes temperature, pressure and humidity and has an LED.
	KindSensor Kind = ""
	// KindRobot is a BuggyBot: resource robot, the last move ("u", "l",
	// "r" or "s"; "s" at start).
	KindRobot Kind = "robot"
	// KindRibot is a joystick-driven robot: resource ribot, the last
	// "dx:dy:dx+dy\n" frame ("0:0:0\n" at start).
	KindRibot Kind = "ribot"
	// KindJS runs the JavaScript it is sent: resource js, the last script
	// it ran.
	KindJS Kind = "js"
	// KindCamera has a webcam: resource webcam, the URL of its image
	// (Config.CameraURL). It takes no command.
	KindCamera Kind = "camera"
)

// WidgetKinds lists the widget node kinds, in the order `aiot sim` starts them.
func WidgetKinds() []Kind { return []Kind{KindRobot, KindRibot, KindJS, KindCamera} }

// MaxScriptBytes bounds a script a js node runs, as JSON text: what it
// reports must fit in a value on the bus (bus.DefaultMaxValueBytes, 4096,
// with its envelope).
const MaxScriptBytes = 4000

// DefaultCameraURL is the camera node's image: a test card the web app
// ships (webapp/public), relative to the dashboard page.
const DefaultCameraURL = "sim-camera.svg"

// kindDefaults are a kind's name, os and board when Config leaves them empty.
func kindDefaults(k Kind) (name, os, board string) {
	switch k {
	case KindRobot:
		return "BuggyBot robot", "riot", "arduino-mega2560"
	case KindRibot:
		return "RIOT ribot", "riot", "arduino-zero"
	case KindJS:
		return "JavaScript node", "riot", "samr21-xpro"
	case KindCamera:
		return "Camera", "android", "android-sim"
	}
	return "WebSocket Node", "linux", "linux-sim"
}

func validKind(k Kind) error {
	switch k {
	case KindSensor, KindRobot, KindRibot, KindJS, KindCamera:
		return nil
	}
	return fmt.Errorf("wssim: unknown kind %q (want robot, ribot, js or camera)", k)
}

// resource is the kind's own resource; "" for a sensor node.
func (k Kind) resource() string {
	switch k {
	case KindRobot, KindRibot, KindJS:
		return string(k)
	case KindCamera:
		return "webcam"
	}
	return ""
}

// initial is the value of the kind's resource at start.
func (k Kind) initial(cameraURL string) string {
	switch k {
	case KindRobot:
		return "s"
	case KindRibot:
		return "0:0:0\n"
	case KindJS:
		return `print("hello from RIOT");`
	case KindCamera:
		return cameraURL
	}
	return ""
}

// accept tells whether the kind's node takes payload for its resource, and
// why not.
func (k Kind) accept(payload string) error {
	switch k {
	case KindRobot:
		switch payload {
		case "u", "l", "r", "s":
			return nil
		}
		return fmt.Errorf("robot move %q: want u, l, r or s", payload)
	case KindRibot:
		return checkRibot(payload)
	case KindJS:
		b, _ := json.Marshal(payload)
		if len(b) > MaxScriptBytes {
			return fmt.Errorf("script of %d bytes as JSON: over %d", len(b), MaxScriptBytes)
		}
		return nil
	}
	return fmt.Errorf("%s takes no command", k.resource())
}

// checkRibot accepts what Pyaiot's joystick sends, "dx:dy:dx+dy\n",
// with |dx|, |dy| ≤ 255.
func checkRibot(p string) error {
	body, ok := strings.CutSuffix(p, "\n")
	parts := strings.Split(body, ":")
	if !ok || len(parts) != 3 || len(body) > 14 {
		return fmt.Errorf("ribot frame %q: want \"dx:dy:dx+dy\\n\"", p)
	}
	var v [3]int
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || strings.HasPrefix(s, "+") {
			return fmt.Errorf("ribot frame %q: %q is not a whole number", p, s)
		}
		v[i] = n
	}
	dx, dy, sum := v[0], v[1], v[2]
	if abs(dx) > 255 || abs(dy) > 255 || sum != dx+dy {
		return fmt.Errorf("ribot frame %q: want |dx|, |dy| ≤ 255 and dx+dy last", p)
	}
	return nil
}

func abs(v int) int { return max(v, -v) }
