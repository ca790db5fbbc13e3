package mqttsn

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/linefile"
)

// ParseTopics reads predefined topics, one per line: a topic id (decimal or
// 0x hex, 1..65534) and the topic name, separated by white space. Blank
// lines and lines starting with # are ignored.
//
//	# id   topic
//	1      gateway/check
//	0x10   node/check
func ParseTopics(r io.Reader) (map[uint16]string, error) {
	topics := map[uint16]string{}
	err := linefile.Each(r, func(_ int, line string) error {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return fmt.Errorf("want \"<id> <topic>\", got %q", line)
		}
		id, err := strconv.ParseUint(fields[0], 0, 16)
		if err != nil || id == 0 || id == 0xFFFF {
			return fmt.Errorf("topic id %q: want 1..65534", fields[0])
		}
		if _, dup := topics[uint16(id)]; dup {
			return fmt.Errorf("topic id %d defined twice", id)
		}
		topics[uint16(id)] = fields[1]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("predefined topics: %w", err)
	}
	if err := checkPredefined(topics); err != nil {
		return nil, err
	}
	return topics, nil
}

// LoadTopics reads a predefined topics file (see ParseTopics).
func LoadTopics(path string) (map[uint16]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("predefined topics: %w", err)
	}
	defer f.Close()
	t, err := ParseTopics(f)
	if err != nil {
		return nil, fmt.Errorf("predefined topics %s: %w", path, err)
	}
	return t, nil
}

// checkPredefined refuses topics that cannot be subjects. Wildcards are
// allowed: a predefined id may be subscribed to.
func checkPredefined(topics map[uint16]string) error {
	for id, name := range topics {
		if id == 0 || id == 0xFFFF {
			return fmt.Errorf("predefined topic id %d: want 1..65534", id)
		}
		if _, err := bus.TopicToSubject(name); err != nil {
			return fmt.Errorf("predefined topic %d: %w", id, err)
		}
	}
	return nil
}

// isFilter reports whether an MQTT topic holds a wildcard level.
func isFilter(topic string) bool {
	for _, l := range strings.Split(topic, "/") {
		if l == "+" || l == "#" {
			return true
		}
	}
	return false
}
