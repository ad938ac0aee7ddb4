using System.Globalization;

namespace Lodestar.Testing.Consul;

/// <summary>Parses Go duration strings as Consul does (<c>time.ParseDuration</c>): <c>5m</c>, <c>1.5s</c>, <c>300ms</c>, <c>1h2m</c>.</summary>
public static class GoDurationParser
{
    /// <summary>Parses <paramref name="text"/>, returning false when it is not a Go duration.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        if (text == "0")
        {
            return true;
        }

        var i = 0;
        var total = 0.0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unitStart = i;
            while (i < text.Length && !char.IsDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            var unit = text[unitStart..i];
            var millis = unit switch
            {
                "ns" => 1e-6,
                "us" or "µs" => 1e-3,
                "ms" => 1.0,
                "s" => 1000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                _ => double.NaN,
            };
            if (double.IsNaN(millis))
            {
                return false;
            }

            total += number * millis;
        }

        value = TimeSpan.FromMilliseconds(total);
        return true;
    }
}
