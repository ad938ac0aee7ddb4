using System.Text.RegularExpressions;

namespace Lodestar.AspNetCore.Admin.Internal;

/// <summary>Removes the user-info part of URIs in text (<c>http://user:pass@host</c> becomes <c>http://host</c>).</summary>
internal static partial class UserInfo
{
    public static string Strip(string text) => text.Contains('@', StringComparison.Ordinal) ? Pattern().Replace(text, "${scheme}") : text;

    [GeneratedRegex(@"(?<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]+@", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
