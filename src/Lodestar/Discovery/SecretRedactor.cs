using System.Text.RegularExpressions;

namespace Lodestar.Discovery;

/// <summary>
/// Removes secrets from text that came from elsewhere before it reaches a log line, an exception message or a
/// command's output: the secrets a client was configured with (tokens, passwords, private keys), and any credential a
/// server echoes back in a recognisable form (<c>Authorization: Bearer …</c>, <c>X-Consul-Token: …</c>,
/// <c>"password":"…"</c>, PEM private-key blocks, user-info in URIs).
/// </summary>
/// <remarks>
/// A registry, or a proxy in front of it, may echo the request it received in an error body; whatever it sends, a
/// redactor between the answer and the message keeps the secret out. Instances are thread-safe: secrets can be added
/// while other threads redact (a token re-read after rotation is added beside the old one).
/// </remarks>
public sealed partial class SecretRedactor
{
    /// <summary>What a secret is replaced with.</summary>
    public const string Mask = "***";

    // Secrets shorter than this are not searched for on their own: masking every "ab" in a message would make it
    // unreadable and protect nothing. The recognisable forms below still mask them.
    private const int MinimumLength = 4;

    private volatile string[] _secrets = [];
    private readonly Lock _gate = new();

    /// <summary>Gets a redactor without configured secrets, which still masks credentials in recognisable forms.</summary>
    public static SecretRedactor Default { get; } = new();

    /// <summary>Adds secrets to mask wherever they appear; <see langword="null"/> and empty values are ignored.</summary>
    /// <param name="secrets">Tokens, passwords, keys.</param>
    /// <returns>This instance.</returns>
    public SecretRedactor Add(params ReadOnlySpan<string?> secrets)
    {
        lock (_gate)
        {
            var list = new List<string>(_secrets);
            foreach (var secret in secrets)
            {
                if (!string.IsNullOrEmpty(secret) && secret.Trim().Length >= MinimumLength && !list.Contains(secret, StringComparer.Ordinal))
                {
                    list.Add(secret);
                    var trimmed = secret.Trim();
                    if (!ReferenceEquals(trimmed, secret) && trimmed != secret && !list.Contains(trimmed, StringComparer.Ordinal))
                    {
                        // A token read from a file often ends with a newline that the request never carried.
                        list.Add(trimmed);
                    }
                }
            }

            // Longest first, so that a secret containing another is masked whole.
            list.Sort(static (a, b) => b.Length.CompareTo(a.Length));
            _secrets = [.. list];
        }

        return this;
    }

    /// <summary>Returns <paramref name="text"/> with every configured secret and every recognisable credential masked.</summary>
    /// <param name="text">Text that may hold a secret, such as an error body or an exception message.</param>
    /// <returns>The text without secrets; <see langword="null"/> stays <see langword="null"/>.</returns>
    public string? Redact(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        foreach (var secret in _secrets)
        {
            if (text.Contains(secret, StringComparison.Ordinal))
            {
                text = text.Replace(secret, Mask, StringComparison.Ordinal);
            }
        }

        text = PrivateKeyBlock().Replace(text, "-----BEGIN PRIVATE KEY-----" + Mask + "-----END PRIVATE KEY-----");
        text = AuthorizationScheme().Replace(text, static m => m.Groups["scheme"].Value + " " + Mask);
        text = CredentialHeader().Replace(text, static m => m.Groups["name"].Value + m.Groups["sep"].Value + Mask);
        text = CredentialField().Replace(text, static m => m.Groups["name"].Value + m.Groups["sep"].Value + Mask + m.Groups["close"].Value);
        text = UserInfo().Replace(text, static m => m.Groups["scheme"].Value + Mask + "@");
        return text;
    }

    [GeneratedRegex(@"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)", RegexOptions.CultureInvariant)]
    private static partial Regex PrivateKeyBlock();

    // "Bearer eyJ...", "Basic dXNlcjpwYXNz": the scheme stays, the credential goes.
    [GeneratedRegex(@"(?<scheme>\b(?:Bearer|Basic|Token|Negotiate))\s+(?!\*\*\*)[A-Za-z0-9\-._~+/=:]+", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex AuthorizationScheme();

    // Header-like "X-Consul-Token: abc", "authorization=abc" (whatever follows up to the end of the value).
    [GeneratedRegex(@"(?<name>\b(?:x-consul-token|x-vault-token|authorization|proxy-authorization|cookie|set-cookie)\b)(?<sep>\s*[:=]\s*)(?!\*\*\*|Bearer|Basic|Token|Negotiate)[^\s,;""'\]\}]+", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex CredentialHeader();

    // JSON or form fields: "password":"x", "token": "x", client-key-data: x, access_token=x.
    [GeneratedRegex(@"(?<name>[""']?\b(?:password|passwd|token|access_token|refresh_token|id_token|secret|client[-_]?key[-_]?data|client[-_]?secret|api[-_]?key)\b[""']?)(?<sep>\s*[:=]\s*[""']?)(?!\*\*\*)[^""'\s,;\]\}]+(?<close>[""']?)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex CredentialField();

    // http://user:pass@host
    [GeneratedRegex(@"(?<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]+@", RegexOptions.CultureInvariant)]
    private static partial Regex UserInfo();
}
