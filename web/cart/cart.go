package cart

import (
	"fmt"
)

// MaxQty is the largest quantity one cart line may hold.
const MaxQty = 99

// Line is one product in a cart and how many of it. The short JSON names
// keep JWT cookies small.
type Line struct {
	ProductID string `json:"p"`
	Qty       int    `json:"q"`
}

// Cart is an ordered list of lines, at most one per product. The zero value
// is an empty cart.
type Cart struct {
	Lines []Line
}

// InvalidError reports input that breaks a cart rule. Its message is a
// sentence a person understands; the web layer answers it with a 400.
type InvalidError struct {
	Message string
}

func (e *InvalidError) Error() string { return e.Message }

// NotInCartError reports an update or removal of a product the cart does not hold.
type NotInCartError struct {
	ProductID string
}

func (e *NotInCartError) Error() string {
	return fmt.Sprintf("%s is not in your cart.", productName(e.ProductID))
}

func productName(id string) string {
	if p, ok := Lookup(id); ok {
		return p.Name
	}
	return "That product"
}

// CheckProduct returns an *InvalidError when id is not in the catalog.
func CheckProduct(id string) error {
	if _, ok := Lookup(id); !ok {
		if len(id) > 40 {
			id = id[:40] + "..."
		}
		return &InvalidError{Message: fmt.Sprintf("There is no product %q in this shop.", id)}
	}
	return nil
}

// CheckQty returns an *InvalidError when qty is not in 1..MaxQty.
func CheckQty(qty int) error {
	if qty < 1 || qty > MaxQty {
		return &InvalidError{Message: fmt.Sprintf("The quantity must be between 1 and %d; %d is not.", MaxQty, qty)}
	}
	return nil
}

// Validate checks that every line names a known product, once, with a
// quantity in range. Stores call it on carts they read back, so a cart that
// breaks the rules never reaches a handler.
func (c Cart) Validate() error {
	seen := make(map[string]bool, len(c.Lines))
	for _, l := range c.Lines {
		if err := CheckProduct(l.ProductID); err != nil {
			return err
		}
		if err := CheckQty(l.Qty); err != nil {
			return err
		}
		if seen[l.ProductID] {
			return &InvalidError{Message: fmt.Sprintf("The cart lists %s twice.", productName(l.ProductID))}
		}
		seen[l.ProductID] = true
	}
	return nil
}

func (c *Cart) index(id string) int {
	for i, l := range c.Lines {
		if l.ProductID == id {
			return i
		}
	}
	return -1
}

// Add puts qty more of the product in the cart. The line's new quantity
// must stay within MaxQty; on error the cart is unchanged.
func (c *Cart) Add(id string, qty int) error {
	if err := CheckProduct(id); err != nil {
		return err
	}
	if err := CheckQty(qty); err != nil {
		return err
	}
	i := c.index(id)
	if i < 0 {
		c.Lines = append(c.Lines, Line{ProductID: id, Qty: qty})
		return nil
	}
	if c.Lines[i].Qty+qty > MaxQty {
		return &InvalidError{Message: fmt.Sprintf("Your cart already holds %d of %s; at most %d fit in one line.", c.Lines[i].Qty, productName(id), MaxQty)}
	}
	c.Lines[i].Qty += qty
	return nil
}

// Set changes the quantity of a product already in the cart.
func (c *Cart) Set(id string, qty int) error {
	if err := CheckProduct(id); err != nil {
		return err
	}
	if err := CheckQty(qty); err != nil {
		return err
	}
	i := c.index(id)
	if i < 0 {
		return &NotInCartError{ProductID: id}
	}
	c.Lines[i].Qty = qty
	return nil
}

// Remove takes a product's line out of the cart.
func (c *Cart) Remove(id string) error {
	if err := CheckProduct(id); err != nil {
		return err
	}
	i := c.index(id)
	if i < 0 {
		return &NotInCartError{ProductID: id}
	}
	c.Lines = append(c.Lines[:i], c.Lines[i+1:]...)
	return nil
}

// Clear empties the cart.
func (c *Cart) Clear() { c.Lines = nil }

// Qty returns how many of the product the cart holds.
func (c Cart) Qty(id string) int {
	if i := c.index(id); i >= 0 {
		return c.Lines[i].Qty
	}
	return 0
}

// Count returns the number of items in the cart.
func (c Cart) Count() int {
	n := 0
	for _, l := range c.Lines {
		n += l.Qty
	}
	return n
}

// TotalCents returns the cart's total price in cents.
func (c Cart) TotalCents() int {
	t := 0
	for _, l := range c.Lines {
		if p, ok := Lookup(l.ProductID); ok {
			t += p.PriceCents * l.Qty
		}
	}
	return t
}

// Clone returns a copy that shares no memory with c.
func (c Cart) Clone() Cart {
	if c.Lines == nil {
		return Cart{}
	}
	return Cart{Lines: append([]Line(nil), c.Lines...)}
}

// FormatCents formats an amount in cents as dollars, e.g. "$12.99".
func FormatCents(cents int) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s$%d.%02d", sign, cents/100, cents%100)
}
