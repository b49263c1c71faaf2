//! Dynamic SQL with numbered placeholders (`$1`, `$2`, …), which both SQLite and PostgreSQL
//! understand. sqlx's `QueryBuilder<Any>` writes `?`, which PostgreSQL rejects, so the store
//! builds its dynamic statements (filters, multi-row inserts) here.

use crate::store::StoreError;
use sqlx::any::{Any, AnyArguments};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::{Arguments, AssertSqlSafe, Encode, Type};
use std::fmt::Write;

pub(crate) struct SqlBuilder {
    sql: String,
    args: AnyArguments,
    count: usize,
    /// The first value that failed to encode: reported when the statement runs.
    error: Option<BoxDynError>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> Self {
        SqlBuilder {
            sql: sql.into(),
            args: AnyArguments::default(),
            count: 0,
            error: None,
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        self.count += 1;
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.count);
        if let Err(error) = self.args.add(value)
            && self.error.is_none()
        {
            self.error = Some(error);
        }
        self
    }

    /// `VALUES (…), (…)` for `rows`, each row's values bound by `bind_row`.
    pub fn values<R>(
        &mut self,
        rows: impl IntoIterator<Item = R>,
        mut bind_row: impl FnMut(&mut RowValues<'_>, R),
    ) {
        self.push(" VALUES ");
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            let mut values = RowValues {
                builder: self,
                first: true,
            };
            bind_row(&mut values, row);
            self.push(")");
        }
    }

    /// `(a, b, c)` of placeholders for `items`.
    pub fn list<T>(&mut self, items: impl IntoIterator<Item = T>)
    where
        T: Encode<'static, Any> + Type<Any> + 'static,
    {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(item);
        }
        self.push(")");
    }

    /// The statement, or the first value that could not be encoded.
    pub fn build(self) -> Result<Query<'static, Any, AnyArguments>, StoreError> {
        match self.error {
            Some(error) => Err(StoreError::Unavailable(format!("encode: {error}"))),
            None => Ok(sqlx::query_with(AssertSqlSafe(self.sql), self.args)),
        }
    }
}

/// The values of one row of a multi-row INSERT.
pub(crate) struct RowValues<'b> {
    builder: &'b mut SqlBuilder,
    first: bool,
}

impl RowValues<'_> {
    pub fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        if !self.first {
            self.builder.push(", ");
        }
        self.first = false;
        self.builder.bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_pushes_rows_and_lists() {
        let mut b = SqlBuilder::new("INSERT INTO t (a, b)");
        b.values([(1_i64, "x"), (2, "y")], |row, (a, s)| {
            row.bind(a).bind(s.to_string());
        });
        b.push(" WHERE c IN ");
        b.list(["p".to_string(), "q".to_string()]);
        assert_eq!(
            b.sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) WHERE c IN ($5, $6)"
        );
        assert_eq!(b.args.len(), 6);
    }
}
