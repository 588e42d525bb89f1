package session

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/cart"
)

// Data is what a session holds, the same in every mode.
type Data struct {
	// User is the signed-in demo user, or "".
	User string
	// Cart is the shopping cart.
	Cart cart.Cart
	// Applied lists the requests with an idempotency key that changed
	// this session, oldest first, each "key:request:unix seconds" (the
	// short hashes Remember takes and when it was applied). Kept with the
	// cart, in the same write, so a retried request is applied once: a
	// client's retry, or a copy nginx resent after the first one's replica
	// stopped answering and that replica then ran (a paused one runs it
	// when it is unpaused). The stores keep an entry for KeepApplied.
	Applied []string
}

// MaxApplied bounds how many applied requests a session keeps whatever
// their age, so that what a store writes on every change stays small: a
// thousand keyed changes within KeepApplied is a load test, not a
// shopper. A token (jwt mode) keeps fewer (its store says how many).
const MaxApplied = 1000

// Recall reports whether a request with keyHash was applied, and whether
// it carried the same request fingerprint (see Remember).
func (d Data) Recall(keyHash, requestHash string) (seen, same bool) {
	for _, a := range d.Applied {
		k, rest, _ := strings.Cut(a, ":")
		if k == keyHash {
			r, _, _ := strings.Cut(rest, ":")
			return true, r == requestHash
		}
	}
	return false, false
}

// Remember records that the request with keyHash and requestHash was
// applied at the time at, forgetting the oldest beyond MaxApplied.
func (d *Data) Remember(keyHash, requestHash string, at time.Time) {
	d.Applied = append(d.Applied, keyHash+":"+requestHash+":"+strconv.FormatInt(at.Unix(), 10))
	d.ForgetApplied(time.Time{}, MaxApplied)
}

// ForgetApplied forgets the requests applied before since, and the
// oldest beyond limit. The list is oldest first, so it drops from the
// front and reads no further than the first entry it keeps. An entry
// written before entries carried their time counts as applied long ago.
func (d *Data) ForgetApplied(since time.Time, limit int) {
	drop := 0
	for drop < len(d.Applied) && appliedAt(d.Applied[drop]).Before(since) {
		drop++
	}
	drop = max(drop, len(d.Applied)-limit)
	if drop > 0 {
		d.Applied = append([]string(nil), d.Applied[drop:]...)
	}
}

// appliedAt is when an Applied entry was applied; the zero time when it
// does not say.
func appliedAt(entry string) time.Time {
	if strings.Count(entry, ":") != 2 {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(entry[strings.LastIndexByte(entry, ':')+1:], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// Clone returns a copy of d that shares no memory with it.
func (d Data) Clone() Data {
	return Data{User: d.User, Cart: d.Cart.Clone(), Applied: append([]string(nil), d.Applied...)}
}

var appliedPattern = regexp.MustCompile(`^[0-9a-f]{1,32}:[0-9a-f]{1,32}(:[0-9]{1,12})?$`)

// ValidApplied reports whether a list read back from a store is one this
// package writes (entries without a time are from before they had one).
func ValidApplied(applied []string) bool {
	if len(applied) > MaxApplied {
		return false
	}
	for _, a := range applied {
		if !appliedPattern.MatchString(a) {
			return false
		}
	}
	return true
}

// errInvalidApplied is Validate's answer for a list ValidApplied refuses.
var errInvalidApplied = errors.New("invalid idempotency list")

// Validate is the check every session read back from outside this
// process must pass before it is used, whatever carried it (a sealed
// value in Redis or Memcached, a token's claims): the cart obeys the cart
// rules (cart.Cart.Validate) and the applied requests are a list this
// package writes (ValidApplied). Its error says which, starting "invalid
// cart: " or "invalid idempotency list".
func (d Data) Validate() error {
	if err := d.Cart.Validate(); err != nil {
		return fmt.Errorf("invalid cart: %w", err)
	}
	if !ValidApplied(d.Applied) {
		return errInvalidApplied
	}
	return nil
}
