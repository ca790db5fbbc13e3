package coap

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/goaiot/goaiot/bus"
)

// Limits of a /.well-known/core document.
const (
	MaxLinkFormat = 16 << 10 // bytes
	MaxLinks      = 256
)

// WellKnownCore is the discovery resource of RFC 6690.
const WellKnownCore = "/.well-known/core"

// ErrLinkFormat wraps every link-format syntax error.
var ErrLinkFormat = errors.New("link-format")

// Link is one link-value of an RFC 6690 document: a target and its
// attributes in order. An attribute without a value (obs) has HasValue false.
type Link struct {
	Target string
	Params []Param
}

// Param is one link attribute.
type Param struct {
	Name     string
	Value    string
	HasValue bool
}

// Get returns the value of the first attribute called name (names are
// case-insensitive) and whether it is present.
func (l Link) Get(name string) (string, bool) {
	for _, p := range l.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// Observable tells whether the link carries the obs attribute (RFC 7641).
func (l Link) Observable() bool {
	_, ok := l.Get("obs")
	return ok
}

// ParseLinkFormat parses an application/link-format document (RFC 6690 §2):
// comma-separated `<target>` links, each followed by `;name` or
// `;name=value` attributes where value is a token or a quoted string that
// may hold ',', ';' and backslash escapes. White space between elements is
// tolerated (some nodes add it), anything else malformed is an error.
func ParseLinkFormat(doc string) ([]Link, error) {
	if len(doc) > MaxLinkFormat {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrLinkFormat, len(doc), MaxLinkFormat)
	}
	p := &lfParser{s: doc}
	var links []Link
	p.space()
	for !p.done() {
		if len(links) == MaxLinks {
			return nil, fmt.Errorf("%w: more than %d links", ErrLinkFormat, MaxLinks)
		}
		l, err := p.link()
		if err != nil {
			return nil, err
		}
		links = append(links, l)
		p.space()
		if p.done() {
			break
		}
		if !p.eat(',') {
			return nil, p.errorf("want ',' between links")
		}
		p.space()
		if p.done() {
			return nil, p.errorf("trailing ','")
		}
	}
	return links, nil
}

type lfParser struct {
	s   string
	pos int
}

func (p *lfParser) done() bool { return p.pos >= len(p.s) }

func (p *lfParser) peek() byte { return p.s[p.pos] }

func (p *lfParser) eat(c byte) bool {
	if !p.done() && p.peek() == c {
		p.pos++
		return true
	}
	return false
}

func (p *lfParser) space() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\r' || p.peek() == '\n') {
		p.pos++
	}
}

func (p *lfParser) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrLinkFormat, p.pos, fmt.Sprintf(format, a...))
}

func (p *lfParser) link() (Link, error) {
	if !p.eat('<') {
		return Link{}, p.errorf("want '<'")
	}
	end := strings.IndexByte(p.s[p.pos:], '>')
	if end < 0 {
		return Link{}, p.errorf("unterminated '<'")
	}
	l := Link{Target: p.s[p.pos : p.pos+end]}
	p.pos += end + 1
	for {
		p.space()
		if !p.eat(';') {
			return l, nil
		}
		p.space()
		param, err := p.param()
		if err != nil {
			return Link{}, err
		}
		l.Params = append(l.Params, param)
	}
}

func isParmChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~*", c) >= 0
}

// isPtokenChar: RFC 6690 ptoken, plus '*' and other safe characters.
func isPtokenChar(c byte) bool {
	return isParmChar(c) || strings.IndexByte("%'()/:<=>?@[]{}", c) >= 0
}

func (p *lfParser) param() (Param, error) {
	start := p.pos
	for !p.done() && isParmChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		return Param{}, p.errorf("want an attribute name")
	}
	prm := Param{Name: p.s[start:p.pos]}
	p.space()
	if !p.eat('=') {
		return prm, nil
	}
	p.space()
	prm.HasValue = true
	if p.eat('"') {
		v, err := p.quoted()
		if err != nil {
			return Param{}, err
		}
		prm.Value = v
		return prm, nil
	}
	start = p.pos
	for !p.done() && isPtokenChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		return Param{}, p.errorf("attribute %q: want a value", prm.Name)
	}
	prm.Value = p.s[start:p.pos]
	return prm, nil
}

func (p *lfParser) quoted() (string, error) {
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.done() {
				return "", p.errorf("unterminated escape")
			}
			b.WriteByte(p.peek())
			p.pos++
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated quoted string")
}

// ErrNotLocal is returned by ResourceName for a link to another host.
var ErrNotLocal = errors.New("link to another host")

// ResourceName maps a link target of a node to a resource name: "/led" →
// "led". Targets on another host, the discovery resource itself, nested
// paths and names that are not a safe subject token are errors (the node is
// not remapped onto other names).
func ResourceName(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	if u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "", fmt.Errorf("target %q: %w", target, ErrNotLocal)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("target %q: query or fragment not supported", target)
	}
	name, ok := strings.CutPrefix(u.Path, "/")
	if !ok {
		name = u.Path // relative reference, resolved against the node's root
	}
	if err := bus.ValidateResource(name); err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	return name, nil
}
