package rollcall

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// User preferences (Open edX's user_api preferences, docs/api.md#preferences): a per-user map
// of keys to string values. Two keys mean something here: pref-lang picks the language of the
// user's mail, time_zone the zone dates in it are shown in.

// Preference keys rollcall reads.
const (
	PrefLang     = "pref-lang"
	PrefTimeZone = "time_zone"
)

// Preference limits, as Open edX's model.
const (
	MaxPreferenceValue = 4000
	// MaxPreferencesBytes bounds one user's stored preferences (they share one item).
	MaxPreferencesBytes = 300_000
)

var (
	// Compiled on first use, not at every cold start: {1,255} compiles to a large program.
	prefKeyPattern  = lazyRegexp(`^[A-Za-z0-9_.-]{1,255}$`)
	langCodePattern = lazyRegexp(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$`)
)

// ValidPreferenceKey reports whether k can name a preference.
func ValidPreferenceKey(k string) bool { return prefKeyPattern().MatchString(k) }

// PreferenceStore keeps preferences; internal/dynamo implements it.
type PreferenceStore interface {
	// GetPreferences reads a user's preferences; ErrNotFound when there is no such user.
	GetPreferences(ctx context.Context, username string) (map[string]string, error)
	// UpdatePreferences sets and removes keys of one user in one write and reports which of
	// them existed before.
	UpdatePreferences(ctx context.Context, username string, set map[string]string, remove []string) (existed map[string]bool, err error)
	// MailPreferences reads the mail preferences (language, time zone) of many users at once
	// (batched reads); users without preferences are absent.
	MailPreferences(ctx context.Context, usernames []string) (map[string]MailPreferences, error)
}

// MailPreferences are what the mailer needs of a registered learner.
type MailPreferences struct {
	Lang     string
	TimeZone string
}

// PreferenceFieldError is Open edX's PreferenceValidationError: 400
// {"field_errors": {"<key>": {"developer_message", "user_message"}}}.
type PreferenceFieldError struct {
	Fields map[string]PreferenceMessage
}

// PreferenceMessage is one key's error.
type PreferenceMessage struct {
	DeveloperMessage string `json:"developer_message"`
	UserMessage      string `json:"user_message"`
}

func (e *PreferenceFieldError) Error() string {
	return fmt.Sprintf("invalid preferences: %v", e.Fields)
}

func (e *PreferenceFieldError) add(key, dev, user string) {
	if e.Fields == nil {
		e.Fields = map[string]PreferenceMessage{}
	}
	e.Fields[key] = PreferenceMessage{DeveloperMessage: dev, UserMessage: user}
}

// PreferenceValue is one value of a PATCH: a string, or null (delete); Invalid when the JSON
// value was anything else.
type PreferenceValue struct {
	Value   string
	Null    bool
	Invalid bool
}

// Preferences are the preference use cases.
type Preferences struct {
	Svc   *Service
	Store PreferenceStore
}

// canManage: self or staff.
func canManage(actor Actor, username string) error {
	if actor.Staff || NormalizeUsername(actor.Username) == NormalizeUsername(username) {
		return nil
	}
	return ErrForbidden
}

func (p *Preferences) read(ctx context.Context, actor Actor, username string) (map[string]string, error) {
	if !ValidUsername(username) {
		return nil, ErrNotFound
	}
	if err := canManage(actor, username); err != nil {
		return nil, err
	}
	prefs, err := p.Store.GetPreferences(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get preferences", err)
	}
	return prefs, nil
}

// Get is GET preferences/{username}.
func (p *Preferences) Get(ctx context.Context, actor Actor, username string) (map[string]string, error) {
	return p.read(ctx, actor, username)
}

// GetOne is GET preferences/{username}/{key}: ErrNotFound when unset.
func (p *Preferences) GetOne(ctx context.Context, actor Actor, username, key string) (string, error) {
	prefs, err := p.read(ctx, actor, username)
	if err != nil {
		return "", err
	}
	v, ok := prefs[key]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// validatePreference checks one key and value, recording the problem in fe.
func validatePreference(fe *PreferenceFieldError, key string, v PreferenceValue) {
	switch {
	case !ValidPreferenceKey(key):
		msg := fmt.Sprintf("Invalid user preference key '%s'.", truncate(key, 300))
		fe.add(truncate(key, 300), msg, msg)
	case v.Invalid:
		fe.add(key, fmt.Sprintf("Value for preference '%s' must be a string.", key),
			fmt.Sprintf("The value for preference '%s' must be text.", key))
	case v.Null:
	case strings.TrimSpace(v.Value) == "":
		msg := fmt.Sprintf("Preference '%s' cannot be set to an empty value.", key)
		fe.add(key, msg, msg)
	case len([]rune(v.Value)) > MaxPreferenceValue:
		fe.add(key, fmt.Sprintf("Value '%s...' not valid for preference '%s': Ensure this value has at most %d characters.", truncate(v.Value, 40), key, MaxPreferenceValue),
			fmt.Sprintf("The value for preference '%s' is too long (at most %d characters).", key, MaxPreferenceValue))
	case hasControl(v.Value):
		fe.add(key, fmt.Sprintf("Value for preference '%s' contains control characters.", key),
			fmt.Sprintf("The value for preference '%s' contains characters that are not allowed.", key))
	case key == PrefTimeZone && !ValidTimeZone(v.Value):
		fe.add(key, fmt.Sprintf("Value '%s' not valid for preference '%s': Not in timezone set.", truncate(v.Value, 100), key),
			fmt.Sprintf("Value '%s' is not a valid time zone selection.", truncate(v.Value, 100)))
	case key == PrefLang && !langCodePattern().MatchString(v.Value):
		fe.add(key, fmt.Sprintf("Value '%s' not valid for preference '%s': Not a language code.", truncate(v.Value, 100), key),
			fmt.Sprintf("Value '%s' is not a valid language.", truncate(v.Value, 100)))
	}
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Update is PATCH preferences/{username}: a merge patch (null deletes a key); every key is
// checked before anything is written.
func (p *Preferences) Update(ctx context.Context, actor Actor, username string, patch map[string]PreferenceValue) error {
	cur, err := p.read(ctx, actor, username)
	if err != nil {
		return err
	}
	fe := &PreferenceFieldError{}
	set := map[string]string{}
	var remove []string
	for k, v := range patch {
		validatePreference(fe, k, v)
		if v.Null {
			if _, ok := cur[k]; ok {
				remove = append(remove, k)
			}
		} else {
			set[k] = v.Value
		}
	}
	if len(fe.Fields) > 0 {
		return fe
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	if err := fitsPreferences(cur, set, remove); err != nil {
		return err
	}
	sort.Strings(remove)
	if _, err := p.Store.UpdatePreferences(ctx, username, set, remove); err != nil {
		return unavailable("update preferences", err)
	}
	return nil
}

func fitsPreferences(cur, set map[string]string, remove []string) error {
	n := 0
	for k, v := range cur {
		n += len(k) + len(v) + 4
	}
	for k, v := range set {
		n += len(k) + len(v) + 4
		if old, ok := cur[k]; ok {
			n -= len(k) + len(old) + 4
		}
	}
	for _, k := range remove {
		n -= len(k) + len(cur[k]) + 4
	}
	if n > MaxPreferencesBytes {
		return NonFieldError(fmt.Sprintf("A user's preferences may take at most %d bytes.", MaxPreferencesBytes))
	}
	return nil
}

// Set is PUT preferences/{username}/{key}: created reports a new key (201) against an update (204).
func (p *Preferences) Set(ctx context.Context, actor Actor, username, key string, v PreferenceValue) (created bool, err error) {
	cur, err := p.read(ctx, actor, username)
	if err != nil {
		return false, err
	}
	if v.Null {
		v = PreferenceValue{Invalid: true}
	}
	fe := &PreferenceFieldError{}
	validatePreference(fe, key, v)
	if len(fe.Fields) > 0 {
		return false, fe
	}
	if err := fitsPreferences(cur, map[string]string{key: v.Value}, nil); err != nil {
		return false, err
	}
	existed, err := p.Store.UpdatePreferences(ctx, username, map[string]string{key: v.Value}, nil)
	if err != nil {
		return false, unavailable("set preference", err)
	}
	return !existed[key], nil
}

// Delete is DELETE preferences/{username}/{key}: ErrNotFound when unset.
func (p *Preferences) Delete(ctx context.Context, actor Actor, username, key string) error {
	cur, err := p.read(ctx, actor, username)
	if err != nil {
		return err
	}
	if _, ok := cur[key]; !ok {
		return ErrNotFound
	}
	existed, err := p.Store.UpdatePreferences(ctx, username, nil, []string{key})
	if err != nil {
		return unavailable("delete preference", err)
	}
	if !existed[key] {
		return ErrNotFound
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Time zones, from the IANA tables shipped in tzdata/ (see its README).

//go:embed tzdata/zone.tab tzdata/iso3166.tab
var tzFiles embed.FS

type tzTables struct {
	all       []string            // sorted
	byCountry map[string][]string // upper-case ISO 3166 code -> sorted zones
	valid     map[string]bool
}

var tzOnce = sync.OnceValue(func() *tzTables {
	t := &tzTables{byCountry: map[string][]string{}, valid: map[string]bool{"UTC": true}}
	f, err := tzFiles.Open("tzdata/zone.tab")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			continue
		}
		cc, zone := cols[0], cols[2]
		t.byCountry[cc] = append(t.byCountry[cc], zone)
		t.valid[zone] = true
	}
	for z := range t.valid {
		t.all = append(t.all, z)
	}
	sort.Strings(t.all)
	for cc := range t.byCountry {
		sort.Strings(t.byCountry[cc])
	}
	return t
})

// ValidTimeZone reports whether name is a time zone the time_zone preference accepts.
func ValidTimeZone(name string) bool { return tzOnce().valid[name] }

// TimeZone is one entry of the time zone list.
type TimeZone struct {
	TimeZone    string `json:"time_zone"`
	Description string `json:"description"`
}

// TimeZones lists the zones commonly used in a country (ISO 3166 alpha-2, any case), or every
// zone when the code is empty or unknown, as Open edX does. Descriptions read
// "Europe/Paris (CET, UTC+0100)" at the time now.
func TimeZones(countryCode string, now time.Time) []TimeZone {
	t := tzOnce()
	zones := t.all
	if cc := strings.ToUpper(strings.TrimSpace(countryCode)); cc != "" {
		if z, ok := t.byCountry[cc]; ok {
			zones = z
		}
	}
	out := make([]TimeZone, 0, len(zones))
	for _, z := range zones {
		desc := z
		if loc, err := time.LoadLocation(z); err == nil {
			at := now.In(loc)
			desc = fmt.Sprintf("%s (%s, UTC%s)", z, at.Format("MST"), at.Format("-0700"))
		}
		out = append(out, TimeZone{TimeZone: z, Description: desc})
	}
	return out
}
