//! Companies: the rows, their contact person and contracted services.

use shomei_core::{CompanyId, Service};
use time::OffsetDateTime;

use crate::db::{Conn, Pool, on};
use crate::rows::ts;
use crate::{CompanyContact, CompanyRow, CompanySummary, Result, Store, StoreError, Tx};

pub(crate) async fn company(c: Conn<'_>, id: CompanyId) -> Result<Option<CompanyRow>> {
    let row: Option<(i64, String, String)> = on!(c, c, d => {
        sqlx::query_as(d::sql("SELECT id, name, service FROM companies WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(c)
            .await?
    });
    row.map(|(id, name, service)| {
        Ok(CompanyRow {
            id: CompanyId(id),
            name,
            service: Service::from_code(&service).ok_or(StoreError::Corrupt {
                table: "companies",
                column: "service",
                value: service.clone(),
            })?,
        })
    })
    .transpose()
}

pub(crate) async fn companies(pool: Pool<'_>) -> Result<Vec<CompanySummary>> {
    let rows: Vec<(i64, String, String, i64, i64, i64)> = on!(pool, p, d => {
        sqlx::query_as(d::sql(
            "SELECT c.id, c.name, c.service, c.created_at, \
                    (SELECT count(*) FROM users u WHERE u.company_id = c.id AND u.deleted_at IS NULL), \
                    (SELECT count(*) FROM users u WHERE u.company_id = c.id AND u.deleted_at IS NULL \
                       AND u.role = 'master') \
             FROM companies c ORDER BY c.id",
        ))
        .fetch_all(p)
        .await?
    });
    rows.into_iter()
        .map(|(id, name, service, created_at, users, masters)| {
            Ok(CompanySummary {
                id: CompanyId(id),
                name,
                service: Service::from_code(&service).ok_or(StoreError::Corrupt {
                    table: "companies",
                    column: "service",
                    value: service.clone(),
                })?,
                users,
                masters,
                created_at: ts(created_at, "companies", "created_at")?,
            })
        })
        .collect()
}

pub(crate) async fn insert_company(
    c: Conn<'_>,
    name: &str,
    service: Service,
    now: OffsetDateTime,
) -> Result<CompanyId> {
    let id: i64 = on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO companies (name, service, created_at) VALUES (?, ?, ?) RETURNING id",
        ))
        .bind(name)
        .bind(service.code())
        .bind(now.unix_timestamp())
        .fetch_one(c)
        .await?
    });
    Ok(CompanyId(id))
}

impl Store {
    /// The company with this id, or `None`.
    pub async fn company(&self, id: CompanyId) -> Result<Option<CompanyRow>> {
        company(self.reader().acquire().await?.conn(), id).await
    }

    /// How many companies are registered (closed ones included).
    pub async fn company_count(&self) -> Result<i64> {
        Ok(on!(self.reader(), p, d => {
            sqlx::query_scalar(d::sql("SELECT COUNT(*) FROM companies")).fetch_one(p).await?
        }))
    }

    /// A company's contact (企業管理); all empty for an unknown company.
    pub async fn company_contact(&self, company: CompanyId) -> Result<CompanyContact> {
        let (name, phone, email): (String, String, String) = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT contact_name, contact_phone, contact_email FROM companies WHERE id = ?",
            ))
            .bind(company.0)
            .fetch_optional(p)
            .await?
            .unwrap_or_default()
        });
        Ok(CompanyContact { name, phone, email })
    }

    /// Every company with its number of users.
    pub async fn companies(&self) -> Result<Vec<CompanySummary>> {
        companies(self.reader()).await
    }
}

impl Tx {
    /// The company with this id, or `None`, read in the transaction.
    pub async fn company(&mut self, id: CompanyId) -> Result<Option<CompanyRow>> {
        company(self.conn(), id).await
    }

    /// Registers a company (no contact yet) and returns its id.
    pub async fn insert_company(
        &mut self,
        name: &str,
        service: shomei_core::Service,
        now: OffsetDateTime,
    ) -> Result<CompanyId> {
        insert_company(self.conn(), name, service, now).await
    }

    /// Replaces a company's contact.
    pub async fn set_company_contact(
        &mut self,
        company: CompanyId,
        c: &CompanyContact,
    ) -> Result<()> {
        on!(self.conn(), conn, d => {
            sqlx::query(d::sql(
                "UPDATE companies SET contact_name = ?, contact_phone = ?, contact_email = ? WHERE id = ?",
            ))
            .bind(&c.name)
            .bind(&c.phone)
            .bind(&c.email)
            .bind(company.0)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Changes a company's contracted service.
    pub async fn set_company_service(
        &mut self,
        company: CompanyId,
        service: shomei_core::Service,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE companies SET service = ? WHERE id = ?"))
                .bind(service.code())
                .bind(company.0)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}
