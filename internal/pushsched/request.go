package pushsched

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/recsys-dev/recsys/internal/recommend"
)

// Channel is where a campaign's items are sent; the numbering matches
// recsys.v1.PushChannel.
type Channel int

// The channels.
const (
	ChannelUnspecified Channel = iota // counted as ChannelOther
	ChannelAppPush
	ChannelEmail
	ChannelSMS
	ChannelOther
)

// channelNames are the channels' metric labels and flag keys.
var channelNames = [...]string{"other", "app_push", "email", "sms", "other"}

// String is the channel's metrics label ("app_push", "email", "sms",
// "other").
func (c Channel) String() string {
	if c < 0 || int(c) >= len(channelNames) {
		return "other"
	}
	return channelNames[c]
}

// ChannelCounts are the default items per user of each channel.
type ChannelCounts struct{ AppPush, Email, SMS, Other int }

// DefaultChannelCounts: one notification shows a few items, an e-mail a
// grid, a text message one link.
var DefaultChannelCounts = ChannelCounts{AppPush: 3, Email: 12, SMS: 1, Other: 10}

// For returns the default count of a channel.
func (cc ChannelCounts) For(c Channel) int {
	switch c {
	case ChannelAppPush:
		return cc.AppPush
	case ChannelEmail:
		return cc.Email
	case ChannelSMS:
		return cc.SMS
	}
	return cc.Other
}

// String formats the counts as ParseChannelCounts reads them.
func (cc ChannelCounts) String() string {
	return fmt.Sprintf("app_push=%d,email=%d,sms=%d,other=%d", cc.AppPush, cc.Email, cc.SMS, cc.Other)
}

// ParseChannelCounts reads "channel=count,..." over def (channels not
// named keep def's count).
func ParseChannelCounts(s string, def ChannelCounts) (ChannelCounts, error) {
	cc := def
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || err != nil || n < 1 || n > 500 {
			return def, fmt.Errorf("push default counts: %q: want channel=count with count 1..500", part)
		}
		switch strings.TrimSpace(name) {
		case "app_push":
			cc.AppPush = n
		case "email":
			cc.Email = n
		case "sms":
			cc.SMS = n
		case "other":
			cc.Other = n
		default:
			return def, fmt.Errorf("push default counts: unknown channel %q (app_push, email, sms, other)", name)
		}
	}
	return cc, nil
}

// Request is a BatchRecommend call: the engine's request and what a
// campaign adds.
type Request struct {
	recommend.PushRequest // Count 0: the channel's default
	Channel               Channel
	// Campaign names the campaign (may be empty: no membership is
	// stored); HoldoutShare of its users, by HeldOut, get EmptyHoldout.
	Campaign     string
	HoldoutShare float64
}
