/* The circle the indexes search for a box of latitudes and longitudes (native.h's GeoBox):
 * geo_index.box_circle, and native.h's box_circle; whether the box holds a point is
 * box_holds (_query.h).
 *
 * A box whose west is greater than its east crosses the 180th meridian; -180 to 180 spans
 * every longitude, and such a box reaching a pole is a polar cap, centred on the pole. Any
 * other box is centred at its middle latitude and longitude. The circle around the centre
 * that holds the whole box has the radius of the box's farthest point, which lies on its
 * edge: on an edge of constant latitude the distance grows with the longitude difference, so
 * the farthest is a corner; on an edge of constant longitude the distance has one extreme,
 * found in closed form. */
#include "_index.h"
#include <math.h>

/* Degrees to radians and back, as Python's math.radians and math.degrees. */
#define TO_RAD (M_PI / 180.0)
#define TO_DEG (180.0 / M_PI)

/* Along the meridian ``meridian``, the latitude strictly between south and north farthest from
 * (lat, lon), when the farthest is not at an end: 1 and *out; else 0. Along a meridian
 * cos(distance) = a sin(phi) + b cos(phi), one extreme in (-90, 90): at tan(phi) = a / b, a
 * farthest point when b < 0. */
static int
farthest_latitude(double lat, double lon, double meridian, double south, double north, double *out)
{
    double a = sin(lat * TO_RAD);
    double b = cos(lat * TO_RAD) * cos((meridian - lon) * TO_RAD);
    if (b >= 0.0) return 0;
    double phi = atan(a / b) * TO_DEG;
    if (!(south < phi && phi < north)) return 0;
    *out = phi;
    return 1;
}

void
box_circle(const GeoBox *box, double *lat, double *lon, double *reach_m)
{
    double width = box->east - box->west;
    if (width < 0.0) width += 360.0;
    if (width == 360.0 && box->north == 90.0) {
        *lat = 90.0;
        *lon = 0.0;
    } else if (width == 360.0 && box->south == -90.0) {
        *lat = -90.0;
        *lon = 0.0;
    } else {
        double middle = box->west + width / 2.0;
        if (middle > 180.0) middle -= 360.0;
        *lat = (box->south + box->north) / 2.0;
        *lon = middle;
    }
    double farthest = 0.0, edges[2] = {box->west, box->east}, corners[2] = {box->south, box->north};
    for (int e = 0; e < 2; e++) {
        for (int c = 0; c < 2; c++) {
            double d = haversine(*lat, *lon, corners[c], edges[e]);
            if (d > farthest) farthest = d;
        }
        double inner;
        if (farthest_latitude(*lat, *lon, edges[e], box->south, box->north, &inner)) {
            double d = haversine(*lat, *lon, inner, edges[e]);
            if (d > farthest) farthest = d;
        }
    }
    *reach_m = farthest;
}
