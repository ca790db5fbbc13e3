package coap

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/goaiot/goaiot/bus"
)

func TestParseBeacon(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Beacon
		err      error
	}{
		{"alive", "alive:AB582D8277D4D97", Beacon{KindAlive, "AB582D8277D4D97"}, nil},
		{"reset", "reset:1234", Beacon{KindReset, "1234"}, nil},
		{"empty", "", Beacon{}, ErrEmptyPayload},
		{"no colon", "alive", Beacon{}, ErrNoSeparator},
		{"unknown kind", "hello:1", Beacon{}, ErrUnknownKind},
		{"uid with colon kept whole", "alive:a:b", Beacon{KindAlive, "a:b"}, nil},
		{"uid with dot", "alive:a.b", Beacon{}, bus.ErrUnsafeToken},
		{"empty uid", "alive:", Beacon{}, bus.ErrEmptyToken},
		{"reserved uid", "alive:check", Beacon{}, bus.ErrReservedToken},
		{"not utf-8", "alive:\xff", Beacon{}, ErrNotUTF8},
		{"too large", "alive:" + strings.Repeat("a", MaxPayload), Beacon{}, ErrPayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBeacon([]byte(tc.in))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("ParseBeacon(%q) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseUpdate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Update
		err      error
	}{
		{"temperature", "temperature:21.5°C", Update{"temperature", "21.5°C"}, nil},
		{"first colon", "time:12:30", Update{"time", "12:30"}, nil},
		{"leading space kept", "suit_state: 2", Update{"suit_state", " 2"}, nil},
		{"empty value", "text:", Update{"text", ""}, nil},
		{"json value", `imu:[{"type":"acc","values":[1,2,3]}]`, Update{"imu", `[{"type":"acc","values":[1,2,3]}]`}, nil},
		{"empty resource", ":1", Update{}, bus.ErrEmptyToken},
		{"reserved", "$state:online", Update{}, bus.ErrReservedToken},
		{"wildcard", "*:1", Update{}, bus.ErrUnsafeToken},
		{"no colon", "21.5", Update{}, ErrNoSeparator},
		{"not utf-8", "t:\xc3", Update{}, ErrNotUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUpdate([]byte(tc.in))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("ParseUpdate(%q) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseLinkFormat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Link
		bad      bool
	}{
		{"riot node_leds", "</board>,</led>,</mcu>,</name>,</os>", []Link{{Target: "/board"}, {Target: "/led"}, {Target: "/mcu"}, {Target: "/name"}, {Target: "/os"}}, false},
		{"empty", "", nil, false},
		{"attributes", `</time>;if="clock";rt="ticks";ct=0;obs`, []Link{{Target: "/time", Params: []Param{
			{"if", "clock", true}, {"rt", "ticks", true}, {"ct", "0", true}, {"obs", "", false}}}}, false},
		{"quoted comma and semicolon", `</a>;title="x, y; z",</b>`, []Link{{Target: "/a", Params: []Param{{"title", "x, y; z", true}}}, {Target: "/b"}}, false},
		{"escaped quote", `</a>;title="say \"hi\""`, []Link{{Target: "/a", Params: []Param{{"title", `say "hi"`, true}}}}, false},
		{"white space", " </a> ; obs ,\n</b>", []Link{{Target: "/a", Params: []Param{{"obs", "", false}}}, {Target: "/b"}}, false},
		{"absolute uri", "<coap://[fe80::1%25eth0]/x>;anchor=\"/\"", []Link{{Target: "coap://[fe80::1%25eth0]/x", Params: []Param{{"anchor", "/", true}}}}, false},
		{"unterminated target", "</a", nil, true},
		{"no brackets", "/a,/b", nil, true},
		{"trailing comma", "</a>,", nil, true},
		{"unterminated quote", `</a>;t="x`, nil, true},
		{"no attribute name", "</a>;=1", nil, true},
		{"no value", "</a>;ct=", nil, true},
		{"garbage after link", "</a> junk", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLinkFormat(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrLinkFormat) {
					t.Errorf("ParseLinkFormat(%q) = %+v, %v; want a link-format error", tc.in, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLinkFormat(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestLinkFormatLimits(t *testing.T) {
	if _, err := ParseLinkFormat(strings.Repeat("</a>,", MaxLinks) + "</a>"); !errors.Is(err, ErrLinkFormat) {
		t.Errorf("%d links: err %v, want a limit error", MaxLinks+1, err)
	}
	if _, err := ParseLinkFormat("</" + strings.Repeat("a", MaxLinkFormat) + ">"); !errors.Is(err, ErrLinkFormat) {
		t.Errorf("oversized document: err %v, want a limit error", err)
	}
}

func TestResourceName(t *testing.T) {
	for _, tc := range []struct {
		target, want string
		ok           bool
	}{
		{"/led", "led", true},
		{"led", "led", true},
		{"/sensor%5Ftemp", "sensor_temp", true},
		{"/", "", false},
		{"/a/b", "", false},
		{"/a.b", "", false},
		{"/%2E", "", false},
		{"/$state", "", false},
		{"/resources", "", false},
		{"coap://other/x", "", false},
		{"//other/x", "", false},
		{"/x?q=1", "", false},
		{"/w%20s", "", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			got, err := ResourceName(tc.target)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ResourceName(%q) = %q, %v; want %q, ok=%v", tc.target, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestCodeText(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.BadRequest:          "4.00 Bad Request",
		codes.NotFound:            "4.04 Not Found",
		codes.Changed:             "2.04 Changed",
		codes.InternalServerError: "5.00 Internal Server Error",
	} {
		if got := CodeText(c); got != want {
			t.Errorf("CodeText(%d) = %q, want %q", c, got, want)
		}
	}
}

func TestParsePSKeys(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"one key", "# comment\nnode-1 000102030405060708090a0b0c0d0e0f\n", true},
		{"short key", "n 0001", false},
		{"not hex", "n zz0102030405060708090a0b0c0d0e0f", false},
		{"three fields", "n 000102030405060708090a0b0c0d0e0f x", false},
		{"duplicate", "n 000102030405060708090a0b0c0d0e0f\nn 000102030405060708090a0b0c0d0e0f", false},
		{"empty", "\n# nothing\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParsePSKeys(strings.NewReader(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("ParsePSKeys: %v, %v; want ok=%v", keys, err, tc.ok)
			}
		})
	}
}
