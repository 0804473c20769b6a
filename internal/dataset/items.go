package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/recsys-dev/recsys/internal/content"
)

// movieLensGenres are the 19 genre flags of ML-100K's u.item, in order
// (u.genre).
var movieLensGenres = []string{"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
	"Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
	"Thriller", "War", "Western"}

// ReadItemsFile reads item descriptions for the content map (package
// content) from a file in one of two layouts, told apart by the first line:
//
//   - MovieLens 100K u.item (latin-1, '|'-separated: id, title, release
//     date, video release date, IMDb URL, 19 genre flags): the title, every
//     genre as a tag and the first genre as the category;
//   - a catalog CSV with a header naming item_id and any of category,
//     price, brand, seller, title (the file recsysctl generate --catalog
//     writes, and recsysctl import --catalog reads).
//
// fn receives every item; a row that cannot be read is an error naming
// its line.
func ReadItemsFile(path string, fn func(id string, it content.Item) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	first, err := br.Peek(256)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	line, _, _ := strings.Cut(string(first), "\n")
	if strings.Count(line, "|") >= 23 {
		return readMovieLensItems(br, path, fn)
	}
	return readCatalogItems(br, path, fn)
}

func readMovieLensItems(r io.Reader, path string, fn func(string, content.Item) error) error {
	ls := newLines(r)
	n := 0
	for {
		b, ok := ls.next()
		if !ok {
			break
		}
		n++
		if strings.TrimSpace(string(b)) == "" {
			continue
		}
		// Latin-1: every byte is the code point of the same value.
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		f := strings.Split(strings.TrimRight(string(rs), "\r"), "|")
		if len(f) != 5+len(movieLensGenres) {
			return fmt.Errorf("%s:%d: %d fields, want %d", path, n, len(f), 5+len(movieLensGenres))
		}
		it := content.Item{Title: f[1]}
		for g, flag := range f[5:] {
			if flag == "1" {
				it.Tags = append(it.Tags, movieLensGenres[g])
			}
		}
		if len(it.Tags) > 0 {
			it.Category = it.Tags[0]
		}
		if err := fn(f[0], it); err != nil {
			return err
		}
	}
	return ls.err(path)
}

func readCatalogItems(r io.Reader, path string, fn func(string, content.Item) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	col := func(name string) int { return slices.Index(header, name) }
	id := col("item_id")
	if id < 0 {
		return fmt.Errorf("%s: the header %q has no item_id (want a catalog CSV or a MovieLens u.item)", path, header)
	}
	cat, price, brand, seller, title := col("category"), col("price"), col("brand"), col("seller"), col("title")
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(i int) string {
			if i < 0 || i >= len(rec) {
				return ""
			}
			return rec[i]
		}
		it := content.Item{Category: get(cat), Brand: get(brand), Seller: get(seller), Title: get(title)}
		if p := get(price); p != "" {
			if it.Price, err = strconv.ParseFloat(p, 64); err != nil {
				return fmt.Errorf("%s:%d: price %q: %w", path, line, p, err)
			}
		}
		if get(id) == "" {
			return fmt.Errorf("%s:%d: empty item_id", path, line)
		}
		if err := fn(get(id), it); err != nil {
			return err
		}
	}
}
