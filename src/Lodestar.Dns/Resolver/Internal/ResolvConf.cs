using System.Globalization;
using System.Net;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>
/// The parts of resolv.conf(5) a stub resolver needs: <c>nameserver</c>, <c>search</c>/<c>domain</c> and the
/// <c>ndots</c>, <c>timeout</c> and <c>attempts</c> options, with glibc's defaults and caps.
/// </summary>
internal sealed class ResolvConf
{
    public const int DefaultNdots = 1;
    public const int DefaultAttempts = 2;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    public IReadOnlyList<IPEndPoint> NameServers { get; init; } = [];

    public IReadOnlyList<string> SearchDomains { get; init; } = [];

    public int Ndots { get; init; } = DefaultNdots;

    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    public int Attempts { get; init; } = DefaultAttempts;

    /// <summary>Reads a file; a missing or unreadable file gives the defaults, as in glibc.</summary>
    public static ResolvConf Load(string path)
    {
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new ResolvConf();
        }
    }

    public static ResolvConf Parse(string text)
    {
        var servers = new List<IPEndPoint>();
        List<string>? search = null;
        string? domain = null;
        var ndots = DefaultNdots;
        var timeout = DefaultTimeout;
        var attempts = DefaultAttempts;
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            switch (parts[0])
            {
                case "nameserver" when parts.Length > 1:
                    // Zone IDs (fe80::1%eth0) are kept; IPAddress parses them.
                    if (IPAddress.TryParse(parts[1], out var address))
                    {
                        servers.Add(new IPEndPoint(address, 53));
                    }

                    break;
                case "search":
                    // The last search or domain line wins (resolv.conf(5)).
                    search = [.. parts.Skip(1).Select(static d => d.TrimEnd('.')).Where(static d => d.Length > 0)];
                    domain = null;
                    break;
                case "domain" when parts.Length > 1:
                    domain = parts[1].TrimEnd('.');
                    search = null;
                    break;
                case "options":
                    foreach (var option in parts.Skip(1))
                    {
                        if (TryOption(option, "ndots:", 0, 15, out var n))
                        {
                            ndots = n;
                        }
                        else if (TryOption(option, "timeout:", 1, 30, out var t))
                        {
                            timeout = TimeSpan.FromSeconds(t);
                        }
                        else if (TryOption(option, "attempts:", 1, 5, out var a))
                        {
                            attempts = a;
                        }
                    }

                    break;
            }
        }

        return new ResolvConf
        {
            NameServers = servers,
            SearchDomains = search ?? (domain is { Length: > 0 } ? [domain] : []),
            Ndots = ndots,
            Timeout = timeout,
            Attempts = attempts,
        };
    }

    private static bool TryOption(string option, string prefix, int min, int max, out int value)
    {
        value = 0;
        if (!option.StartsWith(prefix, StringComparison.Ordinal)
            || !int.TryParse(option.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            return false;
        }

        value = Math.Clamp(value, min, max);
        return true;
    }
}
