package chat

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlainText(t *testing.T) {
	m := Message{
		Title: "Pod default/web created",
		Sections: []Section{
			{Fields: []Field{{Name: "Namespace", Value: "default"}, {Name: "Kind", Value: "Pod"}}},
			{Code: "line1\nline2\n", Buttons: []Button{{Label: "Run again", ID: "a1"}}},
		},
		Context: "cluster: dev",
	}
	require.Equal(t, "Pod default/web created\nNamespace: default\nKind: Pod\n```\nline1\nline2\n```\n[Run again]\ncluster: dev", m.PlainText())
}

func TestPermanent(t *testing.T) {
	require.NoError(t, Permanent(nil))
	base := errors.New("403 forbidden")
	err := fmt.Errorf("post: %w", Permanent(base))
	require.True(t, IsPermanent(err))
	require.ErrorIs(t, err, base)
	require.False(t, IsPermanent(errors.New("503")))
}
