//! The messages Portcullis sends, as plain text. Each carries its link
//! (`{link_base}/…?token=…`) and the bare token on a line of its own, for
//! clients that take the token in an app instead of a browser.

pub struct Mail {
    pub subject: String,
    pub body: String,
}

pub fn verify_email(link: &str, token: &str, hours: i64) -> Mail {
    Mail {
        subject: "Confirm your email address".into(),
        body: format!(
            "Confirm this address for your account by opening:\n\n{link}\n\n\
             Or enter this code:\n\n{token}\n\n\
             The link works once and expires in {hours} hours. If you did not \
             create an account or change your address, ignore this message.\n"
        ),
    }
}

pub fn reset_password(link: &str, token: &str, minutes: i64) -> Mail {
    Mail {
        subject: "Reset your password".into(),
        body: format!(
            "Someone asked to reset the password of your account. To choose a \
             new password, open:\n\n{link}\n\nOr enter this code:\n\n{token}\n\n\
             The link works once and expires in {minutes} minutes; asking again \
             makes this one invalid. If it was not you, ignore this message: \
             your password stays as it is.\n"
        ),
    }
}

pub fn deletion_scheduled(when: &str) -> Mail {
    Mail {
        subject: "Your account will be deleted".into(),
        body: format!(
            "Your account is scheduled for deletion on {when}. Every session \
             was signed out.\n\nTo keep the account, sign in before then and \
             cancel the deletion. If you did not ask for this, sign in, cancel \
             it and change your password.\n"
        ),
    }
}
