// Package teamsapp builds the Teams app package that installs kubechat's
// bot in Teams: a zip of manifest.json (configs/teams/manifest.json with the
// bot's Microsoft App ID and names filled in), color.png (192×192) and
// outline.png (32×32, white on transparent), as Teams requires
// (https://learn.microsoft.com/microsoftteams/platform/concepts/build-and-test/apps-package).
// "make teams-app" writes it with hack/teams-app.
package teamsapp

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubechat/kubechat/configs"
)

// Options fill in the manifest template.
type Options struct {
	// AppID is the Azure Bot's Microsoft App ID, a GUID: the app's id and
	// its bot's botId, and the agent's settings.appID.
	AppID string
	// ShortName is the app's name in Teams (at most 30 characters; default kubechat).
	ShortName string
	// FullName is its long name (at most 100 characters; default "kubechat: Kubernetes ChatOps").
	FullName string
	// Version is the app package's version, MAJOR.MINOR.PATCH (default
	// 1.0.0). Teams needs a higher one to update an uploaded app.
	Version string
}

// Files in the package, as the manifest names them.
const (
	ManifestFile = "manifest.json"
	ColorIcon    = "color.png"
	OutlineIcon  = "outline.png"
)

// Icon sizes Teams requires, in pixels (square).
const (
	ColorSize   = 192
	OutlineSize = 32
)

var (
	guid    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	version = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	holder  = regexp.MustCompile(`\{\{[A-Za-z]+\}\}`)
)

func (o Options) withDefaults() Options {
	if o.ShortName == "" {
		o.ShortName = "kubechat"
	}
	if o.FullName == "" {
		o.FullName = "kubechat: Kubernetes ChatOps"
	}
	if o.Version == "" {
		o.Version = "1.0.0"
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if !guid.MatchString(o.AppID) {
		errs = append(errs, fmt.Errorf("app id %q: is not a GUID (the Azure Bot's Microsoft App ID, such as 3f6a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b)", o.AppID))
	}
	if n := utf8.RuneCountInString(o.ShortName); n > 30 {
		errs = append(errs, fmt.Errorf("short name %q: has %d characters, Teams allows 30", o.ShortName, n))
	}
	if n := utf8.RuneCountInString(o.FullName); n > 100 {
		errs = append(errs, fmt.Errorf("full name %q: has %d characters, Teams allows 100", o.FullName, n))
	}
	if !version.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("version %q: is not MAJOR.MINOR.PATCH", o.Version))
	}
	return errors.Join(errs...)
}

// Manifest returns the template with o filled in.
func Manifest(o Options) ([]byte, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	values := map[string]string{
		"{{appID}}": o.AppID, "{{shortName}}": o.ShortName, "{{fullName}}": o.FullName, "{{version}}": o.Version,
	}
	var unknown []string
	out := holder.ReplaceAllStringFunc(string(configs.TeamsManifest), func(h string) string {
		v, ok := values[h]
		if !ok {
			unknown = append(unknown, h)
			return h
		}
		// Placeholders sit inside JSON strings: escape the value as one.
		quoted, _ := json.Marshal(v)
		return string(quoted[1 : len(quoted)-1])
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("manifest template: unknown placeholders %s", strings.Join(unknown, ", "))
	}
	if !json.Valid([]byte(out)) {
		return nil, errors.New("manifest template: not valid JSON once filled in")
	}
	return []byte(out), nil
}

// modified is every file's time in the zip, so that the same options give
// the same bytes.
var modified = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Write writes the app package, a zip with the manifest and both icons at
// its root, to w.
func Write(w io.Writer, o Options) error {
	manifest, err := Manifest(o)
	if err != nil {
		return err
	}
	colorPNG, err := encode(colorIcon())
	if err != nil {
		return err
	}
	outlinePNG, err := encode(outlineIcon())
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{ManifestFile, manifest}, {ColorIcon, colorPNG}, {OutlineIcon, outlinePNG}} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: modified})
		if err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write the app package: %w", err)
	}
	return nil
}

func encode(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("encode icon: %w", err)
	}
	return b.Bytes(), nil
}

// accent is the manifest's accentColor, the color icon's background.
var accent = color.NRGBA{R: 0x32, G: 0x6C, B: 0xE5, A: 0xFF}

// The icon is a speech bubble with three dots, drawn in the unit square.
func inBubble(x, y float64) bool {
	const left, right, top, bottom, r = 0.16, 0.84, 0.2, 0.66, 0.1
	if x >= left && x <= right && y >= top && y <= bottom {
		// Round the corners.
		cx, cy := min(max(x, left+r), right-r), min(max(y, top+r), bottom-r)
		return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
	}
	// The tail under the bubble's left half: a right triangle.
	return y > bottom && y <= 0.84 && x >= 0.3 && x <= 0.3+(0.84-y)*(0.16/0.18)
}

func inDot(x, y float64) bool {
	for _, cx := range []float64{0.35, 0.5, 0.65} {
		if (x-cx)*(x-cx)+(y-0.43)*(y-0.43) <= 0.05*0.05 {
			return true
		}
	}
	return false
}

// colorIcon is the full-color icon: a white bubble on the accent color.
func colorIcon() image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, ColorSize, ColorSize))
	for py := range ColorSize {
		for px := range ColorSize {
			x, y := (float64(px)+0.5)/ColorSize, (float64(py)+0.5)/ColorSize
			c := accent
			if inBubble(x, y) && !inDot(x, y) {
				c = color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}
			}
			img.SetNRGBA(px, py, c)
		}
	}
	return img
}

// outlineIcon is the outline icon Teams shows in its app bar: the bubble's
// outline and dots in white on transparent, nothing else.
func outlineIcon() image.Image {
	const stroke = 2 // pixels
	img := image.NewNRGBA(image.Rect(0, 0, OutlineSize, OutlineSize))
	at := func(px, py int) (float64, float64) {
		return (float64(px) + 0.5) / OutlineSize, (float64(py) + 0.5) / OutlineSize
	}
	for py := range OutlineSize {
		for px := range OutlineSize {
			x, y := at(px, py)
			if !inBubble(x, y) {
				continue
			}
			edge := inDot(x, y)
			for dy := -stroke; dy <= stroke && !edge; dy++ {
				for dx := -stroke; dx <= stroke && !edge; dx++ {
					if dx*dx+dy*dy <= stroke*stroke {
						edge = !inBubble(at(px+dx, py+dy))
					}
				}
			}
			if edge {
				img.SetNRGBA(px, py, color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF})
			}
		}
	}
	return img
}
