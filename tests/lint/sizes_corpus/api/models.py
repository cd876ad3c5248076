from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    kind = Column(String)


metadata = MetaData()
audit = Table("audit_log", metadata, Column("id", Integer))
