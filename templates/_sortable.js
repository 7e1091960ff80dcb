// Sort a table.sortable by the clicked column: numbers as numbers (cell data-value first), text otherwise, blanks last.
document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("thead th").forEach((header, column) => {
    header.addEventListener("click", () => {
      const ascending = header.dataset.dir !== "asc";
      table.querySelectorAll("thead th").forEach((other) => delete other.dataset.dir);
      header.dataset.dir = ascending ? "asc" : "desc";
      const key = (row) => {
        const cell = row.cells[column];
        const text = (cell.dataset.value ?? cell.textContent).trim();
        const number = Number(text);
        return text === "" || text === "\u2013" ? null : Number.isNaN(number) ? text : number;
      };
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === null || y === null) return (x === null) - (y === null);
        const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : typeof x === "number" ? -1 : 1;
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
});
// Filter a table's rows by the text typed into an input[data-filter-table] naming the table's id.
document.querySelectorAll("input[data-filter-table]").forEach((input) => {
  const table = document.getElementById(input.dataset.filterTable);
  input.addEventListener("input", () => {
    const wanted = input.value.trim().toLowerCase();
    Array.from(table.tBodies[0].rows).forEach((row) => {
      row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
    });
  });
});
