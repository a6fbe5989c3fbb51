//! The tables a query's SQL reads, found by parsing it.
//!
//! A cached result must be dropped by every write to a table it was computed from, and a query's
//! tags are what writes drop. Deriving the tables from the SQL lets the catalog refuse a query
//! whose tags forget one, instead of serving stale rows after a write to the forgotten table.

use std::collections::BTreeSet;

use sqlparser::ast::{
    AccessExpr, Cte, Distinct, Expr, Fetch, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, JoinConstraint, JoinOperator, JsonPathElem, LimitClause,
    NamedWindowDefinition, NamedWindowExpr, ObjectName, ObjectNamePart, OrderBy, OrderByExpr, OrderByKind,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, Subscript, TableFactor,
    TableWithJoins, WindowFrameBound, WindowSpec, WindowType,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// The tables (and views) `sql` reads: lower-case bare names (a schema-qualified name gives its
/// last part, quotes removed), sorted. Names defined by `WITH` are not tables; table functions
/// in `FROM` (`generate_series(...)`) are not either.
///
/// The SQL is parsed as PostgreSQL, then as MySQL (the catalog does not know a query's engine
/// when it is loaded). It must be exactly one query (`SELECT`, `WITH`, `VALUES`, `UNION`, ...)
/// that writes nothing; the error says what is wrong, with the parser's message.
pub fn tables_read(sql: &str) -> Result<BTreeSet<String>, String> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).or_else(|postgres| {
        Parser::parse_sql(&MySqlDialect {}, sql).map_err(|mysql| {
            if postgres == mysql {
                postgres.to_string()
            } else {
                format!("{postgres} (as MySQL: {mysql})")
            }
        })
    })?;
    let [statement] = statements.as_slice() else {
        return Err(format!("expected one statement, found {}", statements.len()));
    };
    let Statement::Query(query) = statement else {
        return Err("the statement is not a query (SELECT, WITH, VALUES, UNION ...)".into());
    };
    let mut walker = Walker::default();
    walker.query(query);
    if walker.writes {
        return Err("the query writes (INSERT, UPDATE, DELETE, MERGE or SELECT INTO)".into());
    }
    Ok(walker.tables)
}

/// Walks a query's syntax tree, collecting the tables it reads.
#[derive(Default)]
struct Walker {
    /// Tables found so far.
    tables: BTreeSet<String>,
    /// Names defined by the `WITH` clauses in scope, innermost last.
    ctes: Vec<String>,
    /// Whether a part of the query writes.
    writes: bool,
}

impl Walker {
    fn query(&mut self, query: &Query) {
        let outer_scope = self.ctes.len();
        if let Some(with) = &query.with {
            // A recursive WITH's bodies see every name it defines; a plain one's see the names
            // defined before them (a body may read a table its own CTE shadows).
            if with.recursive {
                self.ctes.extend(with.cte_tables.iter().map(cte_name));
            }
            for cte in &with.cte_tables {
                self.query(&cte.query);
                if !with.recursive {
                    self.ctes.push(cte_name(cte));
                }
            }
        }
        self.set_expr(&query.body);
        if let Some(OrderBy {
            kind: OrderByKind::Expressions(order),
            ..
        }) = &query.order_by
        {
            self.order_by(order);
        }
        match &query.limit_clause {
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                self.exprs(
                    limit
                        .iter()
                        .chain(offset.iter().map(|o| &o.value))
                        .chain(limit_by),
                );
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.expr(offset);
                self.expr(limit);
            }
            None => {}
        }
        if let Some(Fetch {
            quantity: Some(quantity),
            ..
        }) = &query.fetch
        {
            self.expr(quantity);
        }
        self.ctes.truncate(outer_scope);
    }

    fn set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(query) => self.query(query),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            SetExpr::Values(values) => {
                for row in &values.rows {
                    self.exprs(row);
                }
            }
            SetExpr::Table(table) => {
                if let Some(name) = &table.table_name {
                    self.add(name, table.schema_name.is_some());
                }
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                self.writes = true;
            }
        }
    }

    fn select(&mut self, select: &Select) {
        if select.into.is_some() {
            self.writes = true;
        }
        if let Some(Distinct::On(exprs)) = &select.distinct {
            self.exprs(exprs);
        }
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(expr)
                | SelectItem::ExprWithAlias { expr, .. }
                | SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(expr), _) => {
                    self.expr(expr);
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(_), _)
                | SelectItem::Wildcard(_) => {}
            }
        }
        for table in &select.from {
            self.table_with_joins(table);
        }
        for view in &select.lateral_views {
            self.expr(&view.lateral_view);
        }
        self.exprs(
            [
                &select.prewhere,
                &select.selection,
                &select.having,
                &select.qualify,
            ]
            .into_iter()
            .flatten(),
        );
        if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
            self.exprs(exprs);
        }
        self.exprs(&select.cluster_by);
        self.exprs(&select.distribute_by);
        self.order_by(&select.sort_by);
        for NamedWindowDefinition(_, window) in &select.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = window {
                self.window(spec);
            }
        }
        if let Some(connect_by) = &select.connect_by {
            self.expr(&connect_by.condition);
            self.exprs(&connect_by.relationships);
        }
    }

    fn table_with_joins(&mut self, table: &TableWithJoins) {
        self.table_factor(&table.relation);
        for join in &table.joins {
            self.table_factor(&join.relation);
            let constraint = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::Semi(c)
                | JoinOperator::LeftSemi(c)
                | JoinOperator::RightSemi(c)
                | JoinOperator::Anti(c)
                | JoinOperator::LeftAnti(c)
                | JoinOperator::RightAnti(c)
                | JoinOperator::StraightJoin(c) => c,
                JoinOperator::AsOf {
                    match_condition,
                    constraint,
                } => {
                    self.expr(match_condition);
                    constraint
                }
                JoinOperator::CrossApply | JoinOperator::OuterApply => continue,
            };
            if let JoinConstraint::On(on) = constraint {
                self.expr(on);
            }
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) {
        match factor {
            // With arguments, a table-valued function (`generate_series(1, 10)`): not a table.
            TableFactor::Table { name, args, .. } => match args {
                Some(args) => self.function_args(&args.args),
                None => self.relation(name),
            },
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            TableFactor::NestedJoin { table_with_joins, .. } => self.table_with_joins(table_with_joins),
            TableFactor::Function { args, .. } => self.function_args(args),
            TableFactor::TableFunction { expr, .. } => self.expr(expr),
            TableFactor::UNNEST { array_exprs, .. } => self.exprs(array_exprs),
            TableFactor::JsonTable { json_expr, .. } | TableFactor::OpenJsonTable { json_expr, .. } => {
                self.expr(json_expr);
            }
            TableFactor::XmlTable { row_expression, .. } => self.expr(row_expression),
            TableFactor::Pivot { table, .. }
            | TableFactor::Unpivot { table, .. }
            | TableFactor::MatchRecognize { table, .. } => self.table_factor(table),
            TableFactor::SemanticView { .. } => {}
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Subquery(query) | Expr::Exists { subquery: query, .. } => self.query(query),
            Expr::InSubquery { expr, subquery, .. } => {
                self.expr(expr);
                self.query(subquery);
            }
            Expr::IsFalse(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsTrue(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsNull(inner)
            | Expr::IsNotNull(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner)
            | Expr::Nested(inner)
            | Expr::OuterJoin(inner)
            | Expr::Prior(inner)
            | Expr::IsNormalized { expr: inner, .. }
            | Expr::UnaryOp { expr: inner, .. }
            | Expr::Cast { expr: inner, .. }
            | Expr::Extract { expr: inner, .. }
            | Expr::Ceil { expr: inner, .. }
            | Expr::Floor { expr: inner, .. }
            | Expr::Collate { expr: inner, .. }
            | Expr::Named { expr: inner, .. }
            | Expr::Prefixed { value: inner, .. } => self.expr(inner),
            Expr::IsDistinctFrom(a, b)
            | Expr::IsNotDistinctFrom(a, b)
            | Expr::BinaryOp {
                left: a, right: b, ..
            }
            | Expr::AnyOp {
                left: a, right: b, ..
            }
            | Expr::AllOp {
                left: a, right: b, ..
            }
            | Expr::Like {
                expr: a, pattern: b, ..
            }
            | Expr::ILike {
                expr: a, pattern: b, ..
            }
            | Expr::SimilarTo {
                expr: a, pattern: b, ..
            }
            | Expr::RLike {
                expr: a, pattern: b, ..
            }
            | Expr::InUnnest {
                expr: a,
                array_expr: b,
                ..
            }
            | Expr::AtTimeZone {
                timestamp: a,
                time_zone: b,
            }
            | Expr::Position { expr: a, r#in: b } => {
                self.expr(a);
                self.expr(b);
            }
            Expr::Between { expr, low, high, .. } => {
                for inner in [expr, low, high] {
                    self.expr(inner);
                }
            }
            Expr::InList { expr, list, .. } => {
                self.expr(expr);
                self.exprs(list);
            }
            Expr::Convert { expr, styles, .. } => {
                self.expr(expr);
                self.exprs(styles);
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr);
                for inner in substring_from.iter().chain(substring_for) {
                    self.expr(inner);
                }
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr);
                if let Some(what) = trim_what {
                    self.expr(what);
                }
                if let Some(characters) = trim_characters {
                    self.exprs(characters);
                }
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                for inner in [expr, overlay_what, overlay_from].into_iter().chain(overlay_for) {
                    self.expr(inner);
                }
            }
            Expr::Function(function) => self.function(function),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                for inner in operand.iter().chain(else_result) {
                    self.expr(inner);
                }
                for when in conditions {
                    self.expr(&when.condition);
                    self.expr(&when.result);
                }
            }
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                for set in sets {
                    self.exprs(set);
                }
            }
            Expr::Tuple(list) | Expr::Struct { values: list, .. } => self.exprs(list),
            Expr::Array(array) => self.exprs(&array.elem),
            Expr::Dictionary(fields) => {
                for field in fields {
                    self.expr(&field.value);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.expr(&entry.key);
                    self.expr(&entry.value);
                }
            }
            Expr::Interval(interval) => self.expr(&interval.value),
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.expr(root);
                for access in access_chain {
                    match access {
                        AccessExpr::Dot(inner) | AccessExpr::Subscript(Subscript::Index { index: inner }) => {
                            self.expr(inner);
                        }
                        AccessExpr::Subscript(Subscript::Slice {
                            lower_bound,
                            upper_bound,
                            stride,
                        }) => self.exprs(lower_bound.iter().chain(upper_bound).chain(stride)),
                    }
                }
            }
            Expr::JsonAccess { value, path } => {
                self.expr(value);
                for element in &path.path {
                    if let JsonPathElem::Bracket { key } = element {
                        self.expr(key);
                    }
                }
            }
            Expr::Lambda(lambda) => self.expr(&lambda.body),
            Expr::MemberOf(member) => {
                self.expr(&member.value);
                self.expr(&member.array);
            }
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::Value(_)
            | Expr::TypedString(_)
            | Expr::MatchAgainst { .. }
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..) => {}
        }
    }

    fn exprs<'a>(&mut self, exprs: impl IntoIterator<Item = &'a Expr>) {
        for expr in exprs {
            self.expr(expr);
        }
    }

    fn function(&mut self, function: &Function) {
        self.function_arguments(&function.parameters);
        self.function_arguments(&function.args);
        if let Some(filter) = &function.filter {
            self.expr(filter);
        }
        if let Some(WindowType::WindowSpec(spec)) = &function.over {
            self.window(spec);
        }
        self.order_by(&function.within_group);
    }

    fn function_arguments(&mut self, arguments: &FunctionArguments) {
        match arguments {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(query) => self.query(query),
            FunctionArguments::List(list) => {
                self.function_args(&list.args);
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::OrderBy(order) => self.order_by(order),
                        FunctionArgumentClause::Limit(limit) => self.expr(limit),
                        _ => {}
                    }
                }
            }
        }
    }

    fn function_args(&mut self, args: &[FunctionArg]) {
        for arg in args {
            let value = match arg {
                FunctionArg::Named { arg, .. }
                | FunctionArg::ExprNamed { arg, .. }
                | FunctionArg::Unnamed(arg) => arg,
            };
            if let FunctionArgExpr::Expr(expr) = value {
                self.expr(expr);
            }
        }
    }

    fn window(&mut self, spec: &WindowSpec) {
        self.exprs(&spec.partition_by);
        self.order_by(&spec.order_by);
        if let Some(frame) = &spec.window_frame {
            for bound in std::iter::once(&frame.start_bound).chain(&frame.end_bound) {
                if let WindowFrameBound::Preceding(Some(offset)) | WindowFrameBound::Following(Some(offset)) =
                    bound
                {
                    self.expr(offset);
                }
            }
        }
    }

    fn order_by(&mut self, order: &[OrderByExpr]) {
        for item in order {
            self.expr(&item.expr);
        }
    }

    /// A table (or view, or name defined by `WITH`) named in `FROM` or `JOIN`.
    fn relation(&mut self, name: &ObjectName) {
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last() {
            self.add(&last.value, name.0.len() > 1);
        }
    }

    /// Records table `name` unless it is a `WITH` name in scope (which is never qualified).
    fn add(&mut self, name: &str, qualified: bool) {
        let name = name.to_lowercase();
        if qualified || !self.ctes.contains(&name) {
            self.tables.insert(name);
        }
    }
}

/// The name `cte` defines, lower-cased as table names are.
fn cte_name(cte: &Cte) -> String {
    cte.alias.name.value.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn read(sql: &str) -> BTreeSet<String> {
        tables_read(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn reads_the_tables_of_every_bundled_query() {
        #[derive(serde::Deserialize)]
        struct File {
            query: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            name: String,
            sql: String,
        }
        let expected = [
            ("slow_version", set(&[])),
            ("products_by_category", set(&["products"])),
            ("product", set(&["products"])),
            ("category_summary", set(&["products"])),
            ("article_search", set(&["articles"])),
            ("article_search_pg", set(&["articles"])),
            ("restaurant_summary", set(&["restaurants", "reviews"])),
        ];
        let file: File = toml::from_str(crate::BUNDLED_CATALOG).expect("the bundled catalog is TOML");
        for entry in &file.query {
            let (_, tables) = expected
                .iter()
                .find(|(name, _)| *name == entry.name)
                .unwrap_or_else(|| panic!("add the tables of query {:?} to this test", entry.name));
            assert_eq!(&read(&entry.sql), tables, "{}", entry.name);
        }
    }

    #[test]
    fn reads_mysql_syntax() {
        let sql = "SELECT objectid FROM articles WHERE sentence LIKE CONCAT('%', ?, '%') LIMIT 500";
        assert_eq!(read(sql), set(&["articles"]));
        assert_eq!(
            read("SELECT * FROM `shop`.`Orders` WHERE id = ?"),
            set(&["orders"])
        );
    }

    #[test]
    fn reads_subqueries_in_every_clause() {
        let sql = "SELECT u.id,
                  (SELECT count(*) FROM orders o WHERE o.user_id = u.id) AS orders,
                  CASE WHEN u.score > (SELECT max(score) FROM limits) THEN 'high' ELSE 'low' END AS level,
                  coalesce((SELECT flag FROM flags LIMIT 1), 0) AS flag
            FROM users u
            WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id)
              AND u.id NOT IN (SELECT user_id FROM bans)
            GROUP BY u.id, u.score
            HAVING count(*) > (SELECT min(n) FROM thresholds)";
        assert_eq!(
            read(sql),
            set(&[
                "bans",
                "flags",
                "limits",
                "orders",
                "sessions",
                "thresholds",
                "users"
            ])
        );
    }

    #[test]
    fn reads_joins_nested_joins_derived_tables_and_lateral() {
        let sql = "SELECT * FROM a JOIN b ON a.id = b.a_id LEFT JOIN c USING (id) CROSS JOIN d";
        assert_eq!(read(sql), set(&["a", "b", "c", "d"]));
        let nested = "SELECT * FROM (a JOIN b ON a.id = b.id) JOIN e ON e.id = a.id";
        assert_eq!(read(nested), set(&["a", "b", "e"]));
        let lateral = "SELECT * FROM users u, \
                       LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id LIMIT 3) recent";
        assert_eq!(read(lateral), set(&["orders", "users"]));
        let derived = "SELECT n FROM (SELECT count(*) AS n FROM items) counted";
        assert_eq!(read(derived), set(&["items"]));
    }

    #[test]
    fn reads_every_side_of_a_set_operation() {
        let sql = "SELECT id FROM a UNION ALL SELECT id FROM b \
                   INTERSECT SELECT id FROM c EXCEPT SELECT id FROM d";
        assert_eq!(read(sql), set(&["a", "b", "c", "d"]));
    }

    #[test]
    fn names_defined_by_with_are_not_tables() {
        let sql = "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day'),
                        big AS (SELECT * FROM recent WHERE total > 100)
                   SELECT b.id, c.name FROM big b JOIN customers c ON c.id = b.customer_id";
        assert_eq!(read(sql), set(&["customers", "orders"]));
        // A plain CTE's body reads the table its name shadows.
        let shadow = "WITH reviews AS (SELECT * FROM reviews WHERE rating > 3) SELECT count(*) FROM reviews";
        assert_eq!(read(shadow), set(&["reviews"]));
        let recursive = "WITH RECURSIVE tree AS (
                SELECT id, parent_id FROM categories WHERE parent_id IS NULL
                UNION ALL
                SELECT c.id, c.parent_id FROM categories c JOIN tree t ON c.parent_id = t.id)
            SELECT * FROM tree";
        assert_eq!(read(recursive), set(&["categories"]));
        // A CTE's name is in scope only in its own query.
        let scoped = "SELECT (WITH t AS (SELECT 1 AS one) SELECT count(*) FROM t) AS n FROM t";
        assert_eq!(read(scoped), set(&["t"]));
        // A qualified name is a table even when a CTE has its last part.
        assert_eq!(
            read("WITH recent AS (SELECT 1) SELECT * FROM archive.recent"),
            set(&["recent"])
        );
    }

    #[test]
    fn qualified_and_quoted_names_give_their_lower_case_last_part() {
        let sql = "SELECT * FROM public.\"Products\" p JOIN sales.orders o ON o.product_id = p.id";
        assert_eq!(read(sql), set(&["orders", "products"]));
    }

    #[test]
    fn table_functions_and_constants_are_not_tables() {
        let sql = "SELECT * FROM generate_series(1, 10) AS g(n) JOIN items i ON i.id = g.n";
        assert_eq!(read(sql), set(&["items"]));
        assert_eq!(read("SELECT slow_version() AS version"), set(&[]));
        assert_eq!(read("SELECT * FROM (VALUES (1), (2)) AS v(n)"), set(&[]));
    }

    #[test]
    fn refuses_what_is_not_one_readonly_query() {
        let unparsable = tables_read("SELEC * FROM x").unwrap_err();
        assert!(unparsable.contains("sql parser error"), "{unparsable}");
        assert!(tables_read("SELECT 1; SELECT 2")
            .unwrap_err()
            .contains("expected one statement, found 2"));
        assert!(tables_read("").unwrap_err().contains("found 0"));
        assert!(tables_read("DELETE FROM x").unwrap_err().contains("not a query"));
        let cte_write = "WITH gone AS (DELETE FROM sessions RETURNING id) SELECT count(*) FROM gone";
        assert!(tables_read(cte_write).unwrap_err().contains("writes"));
    }
}
